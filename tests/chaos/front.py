"""The load's way in: a client-side front over the gateway processes.

In compose or Kubernetes a load balancer sits in front of the gateway replicas
and stops sending to one that is going away. Here the front is the load
driver's own HTTP client: it round-robins requests over the gateways and moves
a request to the next gateway **only when the connection is refused**, which
is what a gateway that has closed its listening socket (SIGTERM, then drain)
or is not yet started answers. Any other error is the request's outcome,
reported as a failure: a reset, a timeout or a 5xx is never papered over.

One more client behaviour is worth naming: aiohttp resends an idempotent
request once when a pooled keep-alive connection turns out to have been
closed by the server before the request went out (its
``retry_persistent_connection``), as browsers and load balancers do; a
draining gateway closes its idle keep-alive connections, so GETs rely on it.
"""

from __future__ import annotations

import errno
import itertools
import json as jsonlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from chaos.load import Outcome, Sender, SenderFactory

REFUSED = {errno.ECONNREFUSED}


def _refused(exc: aiohttp.ClientConnectorError) -> bool:
    return exc.os_error.errno in REFUSED or "Connect call failed" in str(exc)


@dataclass
class Reply:
    """What came back: status, headers, body, and which gateway answered."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    gateway: str
    latency: float

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def error_code(self) -> str | None:
        """The JSON error code of an error answer (``{"error": code, ...}``), else None."""
        if self.status < 400:
            return None
        try:
            body = self.json()
        except ValueError:
            return "not-json"
        return str(body.get("error")) if isinstance(body, dict) else "not-json"

    def outcome(self, label: str | None = None) -> Outcome:
        """This reply as a load outcome (the driver fills in index and timing)."""
        return Outcome(
            index=0,
            sent_at=0.0,
            latency=self.latency,
            status=self.status,
            backend=self.headers.get("x-backend-instance"),
            gateway=self.gateway,
            label=label,
            detail=self.error_code(),
        )


@dataclass
class Front:
    """Round robin over ``bases``; fail over to the next one on connection refused only."""

    session: aiohttp.ClientSession
    bases: Sequence[str]
    timeout: float = 10.0
    answered: Counter[str] = field(default_factory=Counter)
    failovers: int = 0
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Reply:
        first = next(self._turn)
        started = time.monotonic()
        last: aiohttp.ClientConnectorError | None = None
        for step in range(len(self.bases)):
            base = self.bases[(first + step) % len(self.bases)]
            try:
                async with self.session.request(
                    method,
                    base + path,
                    headers=headers,
                    json=json,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    allow_redirects=False,
                ) as response:
                    body = await response.read()
            except aiohttp.ClientConnectorError as exc:
                if not _refused(exc):
                    raise
                last = exc
                self.failovers += 1
                continue
            self.answered[base] += 1
            return Reply(
                response.status,
                dict(response.headers),
                body,
                base,
                time.monotonic() - started,
            )
        raise last if last is not None else RuntimeError("no gateway to send to")

    async def outcome(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None
    ) -> Outcome:
        """One request as a load outcome."""
        return (await self.request(method, path, headers=headers)).outcome()


@asynccontextmanager
async def open_front(bases: Sequence[str], *, timeout: float = 10.0) -> AsyncIterator[Front]:
    """A :class:`Front` with a pooled session, closed on exit."""
    connector = aiohttp.TCPConnector(limit=200, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Front(session, list(bases), timeout=timeout)


def get_load(
    bases: Sequence[str],
    path: str = "/load",
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> SenderFactory:
    """A sender factory for :class:`~chaos.load.BackgroundLoad`: ``GET path/<i>`` via a front."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[Sender]:
        async with open_front(bases, timeout=timeout) as front:

            async def send(index: int) -> Outcome:
                return await front.outcome("GET", f"{path}/{index}", headers=headers)

            yield send

    return factory
