"""One backend of a route (or of one of its groups): its URL and weight; the strategies."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

Strategy = Literal["round_robin", "random", "weighted_round_robin", "least_requests"]


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    weight: int = Field(default=1, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be scheme://host[:port] only, without a path or query")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value.rstrip("/")
