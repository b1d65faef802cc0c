"""Upstream failures map to outcomes by class, most specific first, never by ``except`` order."""

from __future__ import annotations

import pytest

from gatehouse_gateway.outcome import Outcome, Retry, outcome_of
from gatehouse_gateway.upstream.h1 import (
    UpstreamBroken,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamTimeout,
    UpstreamTLSError,
)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (UpstreamPoolTimeout("busy"), Outcome.POOL_BUSY),
        (UpstreamConnectError("refused"), Outcome.CONNECT_FAILED),
        # a TLS failure is a connect error too: the more precise class wins
        (UpstreamTLSError("CERTIFICATE_VERIFY_FAILED"), Outcome.TLS_FAILED),
        # an UpstreamError and a TimeoutError at once: a timeout
        (UpstreamTimeout("slow"), Outcome.TIMEOUT),
        (TimeoutError(), Outcome.TIMEOUT),
        (UpstreamBroken("reset"), Outcome.RESET),
        (UpstreamError("other"), Outcome.RESET),
    ],
)
def test_each_failure_has_one_outcome(error: BaseException, outcome: Outcome) -> None:
    assert outcome_of(error) is outcome


def test_only_failures_the_backend_caused_count_against_it() -> None:
    blamed = {o for o in Outcome if o.backend_failure}
    assert blamed == {
        Outcome.CONNECT_FAILED,
        Outcome.TLS_FAILED,
        Outcome.TIMEOUT,
        Outcome.RESET,
    }
    assert Outcome.POOL_BUSY.retry is Retry.NEVER  # the gateway's own queue
    assert Outcome.TIMEOUT.retry is Retry.NEVER  # the backend may still be working on it
    assert Outcome.RESET.retry is Retry.IDEMPOTENT
    assert Outcome.CONNECT_FAILED.retry is Outcome.TLS_FAILED.retry is Retry.UNSENT
