"""A route's quotas: so many requests per consumer per calendar day or month (UTC)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gatehouse_gateway.config.consumer import ConsumerKey

# A name goes into Redis keys and into the RateLimit headers' quoted strings:
# a token-like word, never a quote, backslash, brace or space.
QUOTA_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
MAX_QUOTAS_PER_ROUTE = 8
# At most a trillion requests per window: a typo of many zeros stays a typo.
MAX_LIMIT = 10**12


class QuotaConfig(BaseModel):
    """``limit`` requests per consumer (``key``) per ``period``, a calendar window in UTC.

    ``day`` runs from 00:00 UTC to the next midnight, ``month`` from the 1st
    00:00 UTC to the next month's: every replica agrees on the window
    from its clock alone, and a window's count resets at once when it ends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=QUOTA_NAME, description="shown in RateLimit headers and the API")
    limit: int = Field(ge=1, le=MAX_LIMIT, description="requests per consumer per window")
    period: Literal["day", "month"]
    key: ConsumerKey = Field(
        default_factory=ConsumerKey, description="who a request counts against (default: sub)"
    )


def distinct_quotas(value: list[QuotaConfig]) -> list[QuotaConfig]:
    """A route's quota list: names unique (they key the counts), a handful at most."""
    if len(value) > MAX_QUOTAS_PER_ROUTE:
        raise ValueError(f"at most {MAX_QUOTAS_PER_ROUTE} quotas per route")
    names = [quota.name for quota in value]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"quota names must be unique within a route; repeated: {repeated}")
    return value


# The type of ``RouteConfig.quotas``: the list, checked whole.
QuotaList = Annotated[list[QuotaConfig], AfterValidator(distinct_quotas)]
