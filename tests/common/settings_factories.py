"""A service settings class for the settings and CLI tests, and the variables it reads."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gatehouse_common.settings import ServiceSettings

FIELDS = ("HOST", "PORT", "WORKERS", "LOG_LEVEL", "LOG_JSON", "ENVIRONMENT", "SERVICE_NAME")
PREFIXES = ("GATEHOUSE_", "GATEHOUSE_DEMO_")


class DemoSettings(ServiceSettings):
    """A service's settings class, as each service declares one."""

    model_config = SettingsConfigDict(env_prefix="GATEHOUSE_DEMO_")

    service_name: str = "demo"
    # redeclared with its bounds, as the services do: a bare `int = 8123` would drop them
    port: int = Field(default=8123, ge=0, le=65535)
