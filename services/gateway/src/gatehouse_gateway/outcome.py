"""What one attempt at a backend came to, and what follows from it.

The proxy turns every attempt into one :class:`Outcome`; the outcome alone
then says whether the backend's health suffers, which upstream metric label
counts it, whether another backend may be tried, and what the client is
answered if none is. Exceptions from the upstream client map to outcomes by
their class, most specific first (the MRO), so no ``except`` order decides
whether a TLS failure is a connect failure or a read timeout a reset::

    Outcome          metric label   health   retried when            answered
    OK               the status     by it    502/503, idempotent     the backend's answer
    POOL_BUSY        pool_timeout   no       never                   503 upstream_busy
    CONNECT_FAILED   connect_error  yes      body not yet sent       502 upstream_unreachable
    TLS_FAILED       tls_error      yes      body not yet sent       502 upstream_tls_failed
    TIMEOUT          timeout        yes      never                   504 upstream_timeout
    RESET            reset          yes      idempotent, body unsent 502 upstream_failed
    BODY_TOO_LARGE   -              no       never                   413 body_too_large
    CLIENT_GONE      -              no       never                   nothing (499 in logs)
"""

from __future__ import annotations

import enum

from gatehouse_gateway.upstream.h1 import (
    UpstreamBroken,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamTimeout,
    UpstreamTLSError,
)


class Retry(enum.Enum):
    """When an attempt that ended so may go to another backend."""

    NEVER = enum.auto()
    # the backend never saw the request: any method, unless body bytes already left
    UNSENT = enum.auto()
    # the backend may have acted on it: only methods safe to repeat
    IDEMPOTENT = enum.auto()


class Outcome(enum.Enum):
    """One attempt's result; see the module docstring for the table."""

    OK = ("ok", 0, "", False, Retry.IDEMPOTENT)
    POOL_BUSY = ("pool_timeout", 503, "upstream_busy", False, Retry.NEVER)
    CONNECT_FAILED = ("connect_error", 502, "upstream_unreachable", True, Retry.UNSENT)
    TLS_FAILED = ("tls_error", 502, "upstream_tls_failed", True, Retry.UNSENT)
    TIMEOUT = ("timeout", 504, "upstream_timeout", True, Retry.NEVER)
    RESET = ("reset", 502, "upstream_failed", True, Retry.IDEMPOTENT)
    BODY_TOO_LARGE = ("body_too_large", 413, "body_too_large", False, Retry.NEVER)
    CLIENT_GONE = ("client_gone", 499, "", False, Retry.NEVER)

    def __init__(
        self, label: str, status: int, code: str, backend_failure: bool, retry: Retry
    ) -> None:
        self.label = label
        self.status = status
        self.code = code
        # counts against the backend's passive health
        self.backend_failure = backend_failure
        self.retry = retry


_BY_EXCEPTION: dict[type[BaseException], Outcome] = {
    UpstreamPoolTimeout: Outcome.POOL_BUSY,
    UpstreamTLSError: Outcome.TLS_FAILED,
    UpstreamConnectError: Outcome.CONNECT_FAILED,
    UpstreamTimeout: Outcome.TIMEOUT,
    TimeoutError: Outcome.TIMEOUT,
    UpstreamBroken: Outcome.RESET,
    UpstreamError: Outcome.RESET,
}


def outcome_of(exc: BaseException) -> Outcome:
    """The outcome of an attempt that raised ``exc`` (an upstream client failure)."""
    for cls in type(exc).__mro__:
        outcome = _BY_EXCEPTION.get(cls)
        if outcome is not None:
            return outcome
    return Outcome.RESET
