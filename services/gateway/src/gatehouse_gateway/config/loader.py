"""Reading the config file: YAML in, a validated :class:`GatewayConfig` out.

Any problem becomes one :class:`ConfigError` whose message lists every bad key
by its path (``routes[1].backends[0].url``) with the reason, so a reload
failure logged in one line still says what to fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gatehouse_gateway.config.original import is_original_format, translate_original
from gatehouse_gateway.config.schema import GatewayConfig


class ConfigError(Exception):
    """The config file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with where it came from, for logs and /-/config."""

    config: GatewayConfig
    source: str
    digest: str
    original_format: bool


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _route_name(loc: tuple[int | str, ...], data: Any) -> str:
    """``route 'chat': `` when ``loc`` is inside a route that has a name, else ``""``.

    An operator knows routes by name, not by their place in the list."""
    if len(loc) < 2 or loc[0] != "routes" or not isinstance(loc[1], int):
        return ""
    routes = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(routes, list) or not 0 <= loc[1] < len(routes):
        return ""
    route = routes[loc[1]]
    name = route.get("name") if isinstance(route, dict) else None
    return f"route {name!r}: " if isinstance(name, str) else ""


def describe_validation_error(exc: ValidationError, data: Any = None) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        lines.append(f"{_route_name(loc, data)}{_key_path(loc)}: {err['msg']}")
    return "; ".join(lines)


def parse_config(
    data: Any,
    *,
    source: str = "<memory>",
    auth_url: str = "http://127.0.0.1:8001",
    accounts_ui_url: str = "http://127.0.0.1:8002",
    digest: str = "",
) -> LoadedConfig:
    """Validate already-parsed YAML (either format)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, not {type(data).__name__}")
    original = is_original_format(data)
    if original:
        data = translate_original(data, auth_url=auth_url, accounts_ui_url=accounts_ui_url)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        where = " (original format, mapped)" if original else ""
        raise ConfigError(f"{source}{where}: {describe_validation_error(exc, data)}") from None
    return LoadedConfig(config=config, source=source, digest=digest, original_format=original)


def load_config(
    path: str | Path,
    *,
    auth_url: str = "http://127.0.0.1:8001",
    accounts_ui_url: str = "http://127.0.0.1:8002",
) -> LoadedConfig:
    """Read and validate the YAML file at ``path``."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_config(
        data,
        source=source,
        auth_url=auth_url,
        accounts_ui_url=accounts_ui_url,
        digest=hashlib.sha256(raw).hexdigest()[:12],
    )
