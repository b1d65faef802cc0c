"""Quotas: requests per consumer per UTC day or month, shared across replicas through Redis.

:mod:`.window` says which calendar window an instant is in, :mod:`.counts`
judges a request from memory (the hot path), :mod:`.keeper` writes and reads
the counts in Redis in the background and answers the operator's view.
"""

from gatehouse_gateway.policy.quota.counts import RouteQuotas, Spent
from gatehouse_gateway.policy.quota.keeper import QuotaKeeper

__all__ = ["QuotaKeeper", "RouteQuotas", "Spent"]
