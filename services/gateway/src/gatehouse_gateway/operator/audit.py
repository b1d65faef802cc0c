"""Operator actions recorded in auth's audit log, as the admin who acted.

A drain or restore is announced to auth with ``POST <auth_url>/audit`` and the
acting admin's own bearer token, so auth records it under that admin (and
refuses it, like any admin call, if the token is no longer good). The call
runs after the operator's answer is decided, in a task of its own with a
bounded timeout: the audit log being slow or down never delays or fails a
drain. A failed record is logged and counted
(``gateway_audit_records_total{outcome="failure"}``); it is not retried, the
gateway's own log line of the drain remaining.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from gatehouse_common.client_tls import verify_for
from gatehouse_common.error_shape import describe_error
from gatehouse_gateway.metrics import AUDIT_RECORDS

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)


class AuditRecorder:
    """Sends audit records to ``url`` in the background; one per :class:`Operator`."""

    def __init__(self, url: str | None, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        # made (and httpx imported) on the first record: most workers never send
        # one, and httpx with a client is ~5 MB a worker would hold for nothing
        # (loadtest/README.md, "Memory")
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, token: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """Schedule the record and return at once."""
        if not self.url:
            return
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self.timeout, verify=verify_for(self.url))
        task = asyncio.get_running_loop().create_task(
            self._send(token, {"action": action, "target": target, "detail": detail})
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, token: str, record: dict[str, Any]) -> None:
        if self._client is None or self.url is None:
            return
        import httpx  # imported by record(), which made the client

        try:
            response = await self._client.post(
                self.url, json=record, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code != 201:
                raise httpx.HTTPStatusError(
                    f"audit log answered {response.status_code}",
                    request=response.request,
                    response=response,
                )
        except httpx.HTTPError as exc:
            AUDIT_RECORDS.labels(outcome="failure").inc()
            logger.warning(
                "could not record %s of %s in the audit log: %s",
                record["action"],
                record["target"],
                describe_error(exc),
                extra={"audit_action": record["action"]},
            )
            return
        AUDIT_RECORDS.labels(outcome="success").inc()

    async def close(self, grace: float = 2.0) -> None:
        """Let records under way finish (briefly), then close the client."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._tasks, return_exceptions=True), timeout=grace
                )
        if self._client is not None:
            await self._client.aclose()
