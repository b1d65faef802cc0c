"""A route's path rewrite, as config: ``strip_prefix`` or ``replace_prefix``.

Prefixes are whole path segments in normal form (as routes match them): a
rewrite that worked on another spelling than the one matched would reopen the
``/public/../admin`` gap that normalising closes. ``strip_prefix: /api`` is
``replace_prefix: {from: /api, to: /}``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatehouse_gateway.edge.path import BadPath, normalise_path

# RFC 3986 path characters (pchar and "/"), percent-escapes included: no query,
# fragment, space or control character can get into the target this way
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@/%-]{0,1023}$")


def checked_prefix(value: str) -> str:
    """``value`` if it is an absolute path prefix in normal form; else ValueError."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path (start with /)")
    if not _PATH.match(value):
        raise ValueError(f"{value!r} holds a character a path prefix cannot (?, #, space...)")
    try:
        normal = normalise_path(value.encode("ascii"), "reject").decode("ascii")
    except BadPath as exc:
        raise ValueError(f"{value!r}: {exc.reason}") from None
    if normal != value:
        raise ValueError(f"{value!r} is not in normal form: write {normal!r}")
    if value != "/" and value.endswith("/"):
        raise ValueError(f"{value!r}: leave out the trailing / (prefixes are whole segments)")
    return value


class ReplacePrefix(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", description="the prefix the client's path starts with")
    to: str = Field(description="what the backend sees instead")

    @field_validator("source", "to")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return checked_prefix(value)


class PathRewriteConfig(BaseModel):
    """``path_rewrite:`` on a route: one of ``strip_prefix`` or ``replace_prefix``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strip_prefix: str | None = None
    replace_prefix: ReplacePrefix | None = None

    @field_validator("strip_prefix")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        if value is None:
            return value
        checked_prefix(value)
        if value == "/":
            raise ValueError("stripping / changes nothing")
        return value

    @model_validator(mode="after")
    def _one(self) -> PathRewriteConfig:
        if (self.strip_prefix is None) == (self.replace_prefix is None):
            raise ValueError("give exactly one of strip_prefix and replace_prefix")
        return self

    @property
    def source(self) -> str:
        """The client-side prefix."""
        if self.replace_prefix is not None:
            return self.replace_prefix.source
        return self.strip_prefix or "/"

    @property
    def target(self) -> str:
        """The backend-side prefix."""
        return self.replace_prefix.to if self.replace_prefix is not None else "/"
