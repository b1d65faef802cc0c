"""scripts/demo.py loaded as a module (it is a script, not a package), for tests of its choices."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from support.processes import REPO_ROOT


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gatehouse_demo", REPO_ROOT / "scripts" / "demo.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
