"""The auth service's own Prometheus metrics (the HTTP ones come from gatehouse_common)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Gauge


class LoginResult(StrEnum):
    """A closed set, so the ``result`` label cannot grow with what clients send."""

    success = "success"
    invalid_credentials = "invalid_credentials"
    rate_limited = "rate_limited"


ACCOUNTS_CREATED = Counter("accounts_created_total", "Accounts created through the API.")
LOGINS = Counter("logins_total", "Login attempts by result.", ["result"])
for _result in LoginResult:
    LOGINS.labels(result=_result.value)  # every series exists from the start, at 0

REVOCATIONS_PUBLISHED = Counter(
    "revocations_published_total", "Revocations written to Redis for the gateways.", ["kind"]
)
REVOCATION_PUBLISH_FAILURES = Counter(
    "revocation_publish_failures_total",
    "Attempts to write a revocation that Redis refused (each is retried).",
    ["kind"],
)
REVOCATIONS_PENDING = Gauge(
    "revocations_pending", "Revocations waiting for Redis to come back (retried)."
)
for _kind in ("jti", "sub"):
    REVOCATIONS_PUBLISHED.labels(kind=_kind)
    REVOCATION_PUBLISH_FAILURES.labels(kind=_kind)

REFRESHES = Counter("token_refreshes_total", "Refresh token uses by result.", ["result"])
for _outcome in ("success", "unknown", "reused", "revoked", "expired", "account"):
    REFRESHES.labels(result=_outcome)
SESSIONS_ENDED = Counter("sessions_ended_total", "Sessions ended, by why.", ["reason"])
SESSIONS_ENDED.labels(reason="logout")
