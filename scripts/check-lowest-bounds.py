"""Check that an environment holds exactly the lower bound of every declared dependency.

`make test-lowest` installs the workspace packages with uv's lowest-direct
resolution and wheels only (no compiler needed). Where the declared lowest
version has no wheel for this Python, or conflicts with another bound, uv
quietly takes a later one, and the bound would claim a version the tests never
ran on. Run with the Python of that environment; exits 1 naming each such bound.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = [
    ROOT / "libs" / "common",
    *sorted(p for p in (ROOT / "services").iterdir() if p.is_dir()),
]


def main() -> int:
    wrong: list[str] = []
    checked = 0
    for member in MEMBERS:
        project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
        for line in project.get("dependencies", []):
            requirement = Requirement(line)
            if requirement.name.startswith("gatehouse-"):
                continue
            floors = [s.version for s in requirement.specifier if s.operator == ">="]
            if not floors:
                continue
            checked += 1
            try:
                installed = version(requirement.name)
            except PackageNotFoundError:
                installed = "nothing"
            if installed == "nothing" or Version(installed) != Version(floors[0]):
                where = member.relative_to(ROOT) / "pyproject.toml"
                wrong.append(f"{where}: {line} installed {installed}")
    for entry in wrong:
        print(f"lowest bound not installed: {entry}", file=sys.stderr)
    if not wrong:
        print(f"every declared lower bound installed as declared ({checked} bounds)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
