"""Rate limits per route and consumer, shared across replicas through Redis.

:class:`RateLimiter` is the gateway's; :mod:`.limit` decides per consumer from
memory, :mod:`.store` refills leases from Redis in the background,
:mod:`.scripts` holds the Lua and the key layout. services/gateway/README.md
("Rate limits") states the bound and the fallbacks.
"""

from gatehouse_gateway.policy.ratelimit.limiter import RateLimiter, Refused, RouteLimits

__all__ = ["RateLimiter", "Refused", "RouteLimits"]
