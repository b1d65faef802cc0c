"""Command-line handling shared by the services' entry points.

Flags beat the environment, which beats defaults. Flags are written back into
the environment under the service's prefix so uvicorn worker processes, which
build their app from a factory, see the same settings as the parent.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from gatehouse_common.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def service_parser(description: str, *, workers: bool = True) -> argparse.ArgumentParser:
    """A parser with the flags every service takes: --host, --port, --workers, --log-level."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", help="address to listen on")
    parser.add_argument("--port", type=int, help="port to listen on")
    if workers:
        parser.add_argument("--workers", type=int, help="number of worker processes")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error", "critical"], help="log level"
    )
    return parser


def export_overrides(settings_cls: type[ServiceSettings], overrides: Mapping[str, Any]) -> None:
    """Put flag values into the environment under the settings' prefix."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    for field, value in overrides.items():
        if value is None:
            continue
        os.environ[f"{prefix}{field}".upper()] = str(value)


def settings_from_args(
    settings_cls: type[SettingsT],
    args: argparse.Namespace,
    fields: Sequence[str] = ("host", "port", "workers", "log_level"),
) -> SettingsT:
    """Build settings from parsed flags, exporting them for worker processes."""
    overrides = {f: getattr(args, f, None) for f in fields}
    export_overrides(settings_cls, overrides)
    return settings_cls()
