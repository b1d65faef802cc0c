"""Rate limits of a route (``rate_limits:``), as pydantic models.

Each limit is a token bucket: ``burst`` requests at once, refilled at
``rate`` per ``per`` (second, minute or hour), kept per consumer
(:class:`~gatehouse_gateway.config.consumer.ConsumerKey`). A route may have
several (10/s per subject and 1,000/s for the whole route); a request must
fit every one. The runtime is :mod:`gatehouse_gateway.policy.ratelimit`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatehouse_gateway.config.consumer import ConsumerKey

Period = Literal["second", "minute", "hour"]
StoreFailure = Literal["local", "open", "closed"]

SECONDS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
# One request per hour at the slowest, a million per second at the fastest:
# beyond these a limit is a typo, not a policy.
MAX_RATE = 1_000_000
MAX_BURST = 10_000_000
MAX_LIMITS_PER_ROUTE = 16


class RateLimitConfig(BaseModel):
    """One limit: ``rate`` per ``per``, up to ``burst`` at once, per consumer ``key``.

    ``lease`` is how many tokens one replica takes from the shared bucket in
    Redis per refill (unset: a twentieth of a second's worth, at most a
    quarter of the burst, at least 1); it is the ``L`` of the over-admission
    bound (services/gateway/README.md, "Rate limits"). ``on_store_failure``
    says what happens while Redis is unreachable: ``local`` (each replica
    enforces ``rate`` and ``burst`` divided by the replicas seen recently),
    ``open`` (no limit) or ``closed`` (every request refused with 503).
    ``headers: true`` adds ``RateLimit-Policy`` and ``RateLimit`` to allowed
    answers too (refusals always carry them).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    key: ConsumerKey = ConsumerKey()
    rate: int = Field(ge=1, le=MAX_RATE, description="requests per `per`, long-run")
    per: Period = "second"
    burst: int | None = Field(
        default=None, ge=1, le=MAX_BURST, description="requests at once; unset: rate"
    )
    lease: int | None = Field(default=None, ge=1, le=MAX_BURST)
    on_store_failure: StoreFailure = "local"
    headers: bool = False

    @field_validator("rate", "burst", "lease", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        # 2.5 requests or "true" requests: refuse, never round or coerce silently
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("must be a whole number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RateLimitConfig:
        if self.lease is not None and self.lease > self.capacity:
            raise ValueError(f"lease ({self.lease}) cannot exceed burst ({self.capacity})")
        return self

    @property
    def capacity(self) -> int:
        """The bucket's size: ``burst``, or ``rate`` when unset."""
        return self.burst if self.burst is not None else self.rate

    @property
    def per_second(self) -> float:
        return self.rate / SECONDS[self.per]

    @property
    def lease_size(self) -> int:
        if self.lease is not None:
            return self.lease
        return max(1, min(math.ceil(self.per_second * 0.05), self.capacity // 4))


def check_rate_limits(limits: list[RateLimitConfig], auth: str | None) -> list[RateLimitConfig]:
    """Names unique within a route (they label metrics and headers), not too many, and
    keys a route can read: without ``auth: required`` there is no subject or claim,
    and every request would share one bucket."""
    if len(limits) > MAX_LIMITS_PER_ROUTE:
        raise ValueError(f"at most {MAX_LIMITS_PER_ROUTE} rate limits per route")
    names = [limit.name for limit in limits]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"rate limit names must be unique in a route; repeated: {repeated}")
    if auth != "required":
        tokenless = [limit.name for limit in limits if limit.key.by in ("subject", "claim")]
        if tokenless:
            raise ValueError(
                f"rate limits {tokenless} are keyed on the token, which needs auth: required"
            )
    return limits
