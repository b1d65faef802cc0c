"""nginx for the benchmark: the fast backends and the reverse proxy it is judged against.

The configs are files under ``loadtest/nginx/`` with ``{{NAME}}`` slots (nginx
uses both ``$`` and braces itself, so neither str.format nor Template fits).
Each instance gets a prefix folder of its own for its pid, logs and temp files,
and runs in the foreground under the harness (``daemon off``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from gatehouse_loadtest.procs import ManagedProcess

CONFIGS = Path(__file__).resolve().parents[1] / "nginx"
_SLOT = re.compile(r"\{\{([A-Z_]+)\}\}")


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill every ``{{NAME}}`` slot; a slot without a value is an error, not left in."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for {{{{{name}}}}}")
        return str(values[name])

    return _SLOT.sub(fill, template)


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: run `make system-deps`")
    return found


def start_nginx(
    name: str, template: str, values: Mapping[str, object], *, workdir: Path
) -> ManagedProcess:
    """Render ``loadtest/nginx/<template>`` into its own prefix and start nginx on it."""
    prefix = workdir / name
    prefix.mkdir(parents=True, exist_ok=True)
    # nginx drops its workers to `nobody` when started as root; they only need
    # to reach the prefix for temp files, so let them in.
    prefix.chmod(0o755)
    config = prefix / "nginx.conf"
    config.write_text(render((CONFIGS / template).read_text(), {**values, "PREFIX": prefix}))
    binary = nginx_binary()
    check = subprocess.run(
        [binary, "-t", "-q", "-p", str(prefix), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejected {config}:\n{check.stderr}")
    command = [binary, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"]
    return ManagedProcess(name, command, log_path=prefix / "stdout.log").start()
