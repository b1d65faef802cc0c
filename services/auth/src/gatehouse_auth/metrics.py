"""The auth service's own Prometheus metrics (the HTTP ones come from gatehouse_common)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter


class LoginResult(StrEnum):
    """A closed set, so the ``result`` label cannot grow with what clients send."""

    success = "success"
    invalid_credentials = "invalid_credentials"
    rate_limited = "rate_limited"


ACCOUNTS_CREATED = Counter("accounts_created_total", "Accounts created through the API.")
LOGINS = Counter("logins_total", "Login attempts by result.", ["result"])
for _result in LoginResult:
    LOGINS.labels(result=_result.value)  # every series exists from the start, at 0
