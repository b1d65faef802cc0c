"""The gateway's YAML config: schema, loader, and the original app's format."""

from gatehouse_gateway.config.loader import ConfigError, LoadedConfig, load_config, parse_config
from gatehouse_gateway.config.schema import GatewayConfig, RouteConfig

__all__ = [
    "ConfigError",
    "GatewayConfig",
    "LoadedConfig",
    "RouteConfig",
    "load_config",
    "parse_config",
]
