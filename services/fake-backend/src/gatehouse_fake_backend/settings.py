"""FakeBackendSettings: one instance's name and the faults it starts with."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gatehouse_common.settings import ServiceSettings


class FakeBackendSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEHOUSE_FAKE_BACKEND_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    service_name: str = "fake-backend"
    port: int = Field(default=9001, ge=0, le=65535)
    # Named in every echo so a caller sees which instance answered; defaults to backend-<port>.
    instance_name: str = ""
    latency_ms: float = Field(default=0.0, ge=0, le=600_000)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=503, ge=400, le=599)
    healthy: bool = True
    # The /__backend/ endpoints (change faults at run time, large downloads) are
    # for tests, chaos runs and demos. Behind a gateway any caller of a route
    # could reach them and take the backend down, so they are off unless asked for.
    faults: bool = False

    @property
    def instance(self) -> str:
        return self.instance_name or f"backend-{self.port}"


@lru_cache
def get_settings() -> FakeBackendSettings:
    return FakeBackendSettings()
