"""When a failed attempt may be retried, and the budget that bounds retries overall.

A retry storm turns a slow backend into a dead one, so besides the per-route
attempt limit, retries draw from a budget (as Finagle and Envoy do): each
request deposits ``ratio`` of a retry, and ``min_per_second`` more trickle in
with time so a quiet route can still retry.
"""

from __future__ import annotations

import time

from gatehouse_gateway.config.schema import RetriesConfig

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRYABLE_STATUSES = frozenset({502, 503})


class RetryBudget:
    __slots__ = ("_balance", "_cap", "_last", "_min_per_second", "_ratio")

    def __init__(self, config: RetriesConfig) -> None:
        self._ratio = config.budget_ratio
        self._min_per_second = config.budget_min_per_second
        self._cap = max(10.0, self._min_per_second * 10)
        self._balance = self._cap
        self._last = time.monotonic()

    def deposit(self) -> None:
        """One request passed through: it earns ``ratio`` of a retry."""
        balance = self._balance + self._ratio
        self._balance = balance if balance < self._cap else self._cap

    def withdraw(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        now = time.monotonic()
        refill = (now - self._last) * self._min_per_second
        self._last = now
        self._balance = min(self._cap, self._balance + refill)
        if self._balance >= 1.0:
            self._balance -= 1.0
            return True
        return False
