"""Who a per-consumer policy counts a request against (rate limits, quotas, canaries)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class ConsumerKey(BaseModel):
    """``by`` names what identifies a consumer; ``name`` the claim or header where one is read.

    - ``subject``: the verified token's ``sub`` (a route with ``auth: required``);
    - ``claim``: one claim of the verified token (``name: tenant``); a list is joined;
    - ``client_address``: the client's address as the gateway vouches for it
      (the peer, or from a trusted proxy the address it reported);
    - ``api_key``: a header holding an API key (``name``, default ``x-api-key``);
      the value is hashed before it is kept anywhere;
    - ``header``: any request header's value;
    - ``route``: every request of the route together (one shared budget).

    A request without the value (no token, no header) counts against one shared
    ``-`` consumer, so leaving a header out never escapes a limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: Literal["subject", "claim", "client_address", "api_key", "header", "route"] = "subject"
    name: str | None = Field(default=None, description="the claim or header name")

    @model_validator(mode="after")
    def _named(self) -> ConsumerKey:
        if self.by in ("claim", "header") and not self.name:
            raise ValueError(f"by: {self.by} needs a name")
        if self.by in ("subject", "client_address", "route") and self.name:
            raise ValueError(f"by: {self.by} takes no name")
        if self.name is not None:
            pattern = _CLAIM_NAME if self.by == "claim" else _HEADER_NAME
            if not pattern.match(self.name):
                raise ValueError(f"{self.name!r} is not a valid {self.by} name")
        return self

    @property
    def header(self) -> bytes | None:
        """The lower-case header name read, for ``api_key`` and ``header``."""
        if self.by == "api_key":
            return (self.name or "x-api-key").lower().encode()
        if self.by == "header":
            return (self.name or "").lower().encode()
        return None
