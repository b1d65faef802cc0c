"""A route's CORS policy, as config: who may call it from a browser, and how.

Origins are compared as browsers serialise them (RFC 6454 section 6.1):
``scheme://host[:port]``, lower case, the default port left out, no path. So
each configured origin is checked to be exactly that, and an entry that is not
(a path, a trailing slash, upper case, ``null``, a wildcard inside a name) is a
config error rather than a rule that silently never matches, or matches more
than meant. ``*`` alone allows any origin, and never together with
credentials: browsers refuse that pairing, and echoing every origin with
credentials would hand any site the user's session.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# a host name or bracketed IPv6 address: nothing a browser would not serialise as is
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])$")
# Allowing these would make the preflight, not the backend, decide what a
# forwarded request may do to the gateway itself; the browser never lets a
# page set them anyway (forbidden request headers).
_NEVER_ALLOWED_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


def canonical_origin(value: str) -> str:
    """``value`` if it is an origin exactly as a browser sends it; else ValueError saying why."""
    if value == "null":
        raise ValueError(
            "'null' is the origin of sandboxed frames and local files, shared by every "
            "such page: it cannot be allowed"
        )
    parts = urlsplit(value)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{value!r}: an origin is http:// or https://host[:port]")
    if parts.path or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"{value!r}: an origin has no path, query or fragment (not even '/')")
    if parts.username is not None or "@" in value:
        raise ValueError(f"{value!r}: an origin has no user info")
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r}: bad port") from None
    netloc = f"[{host}]" if ":" in host else host
    if not _HOST.match(netloc):
        raise ValueError(f"{value!r}: not a host name (no wildcards: list each origin)")
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc += f":{port}"
    canonical = f"{parts.scheme}://{netloc}"
    if canonical != value:
        raise ValueError(
            f"{value!r} is not how a browser sends it (lower case, no default port): "
            f"write {canonical!r}"
        )
    return value


class CorsConfig(BaseModel):
    """``cors:`` on a route: preflights answered at the gateway, answers marked for browsers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_origins: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="exact origins (https://app.example.com), or ['*'] for any",
    )
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "HEAD", "POST"],
        min_length=1,
        max_length=32,
        description="methods a preflight may ask for",
    )
    allow_headers: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="request headers a preflight may ask for; ['*']: any it names",
    )
    expose_headers: list[str] = Field(
        default_factory=list, max_length=100, description="response headers scripts may read"
    )
    allow_credentials: bool = Field(
        default=False, description="cookies and Authorization may be sent (never with '*')"
    )
    max_age: int | None = Field(
        default=None, ge=0, le=86400, description="seconds a browser may cache a preflight"
    )

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        if "*" in value:
            if len(value) > 1:
                raise ValueError("'*' allows every origin: list it alone")
            return value
        for origin in value:
            canonical_origin(origin)
        return value

    @field_validator("allow_methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        for method in value:
            if not _TOKEN.match(method) or method != method.upper():
                raise ValueError(f"{method!r} is not an upper-case method name")
            if method in ("CONNECT", "TRACE", "TRACK"):
                raise ValueError(f"{method} is never forwarded by the gateway")
        return value

    @field_validator("allow_headers", "expose_headers")
    @classmethod
    def _header_names(cls, value: list[str]) -> list[str]:
        if value == ["*"]:
            return value
        for name in value:
            if name == "*":
                raise ValueError("'*' stands alone")
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header name")
            if name.lower() in _NEVER_ALLOWED_HEADERS:
                raise ValueError(f"{name!r} is never a CORS header")
        return [name.lower() for name in value]

    @model_validator(mode="after")
    def _credentials(self) -> CorsConfig:
        if self.allow_credentials and self.allow_origins == ["*"]:
            raise ValueError(
                "allow_credentials with allow_origins ['*'] would let every site call "
                "this route as the user: list the origins"
            )
        if self.expose_headers == ["*"] and self.allow_credentials:
            raise ValueError("expose_headers ['*'] means nothing to browsers with credentials")
        return self
