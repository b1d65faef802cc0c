"""Running a service under uvicorn, the same way for every service.

Graceful shutdown is uvicorn's: on SIGTERM (or SIGINT) it closes the listening
socket, lets in-flight requests finish for up to ``graceful_timeout`` seconds,
runs the app's lifespan shutdown, then exits. With several workers the parent
forwards the signal to each one.
"""

from __future__ import annotations

import math
import os
import tempfile

import uvicorn

from gatehouse_common.http_protocol import CoalescingHttpToolsProtocol
from gatehouse_common.settings import ServiceSettings

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_HEALTHCHECK_SECONDS = 60


def _prepare_multiprocess_metrics(workers: int) -> None:
    """With several workers each has its own registry; prometheus_client then
    needs a shared directory to aggregate them at scrape time."""
    if workers > 1 and not os.environ.get(_MULTIPROC_ENV):
        os.environ[_MULTIPROC_ENV] = tempfile.mkdtemp(prefix="gatehouse-metrics-")


def serve(app_factory: str, settings: ServiceSettings, *, fast: bool = False) -> None:
    """Serve ``app_factory`` (an import string ``module:function``) with ``settings``.

    ``fast`` selects uvloop and httptools, the fastest event loop and HTTP
    parser uvicorn offers, for the services on the request path, with a small
    response's head and body written together (:mod:`gatehouse_common.http_protocol`).
    """
    _prepare_multiprocess_metrics(settings.workers)
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        # uvicorn types this as whole seconds; round up so a grace period is never cut short
        timeout_graceful_shutdown=math.ceil(settings.graceful_timeout),
        loop="uvloop" if fast else "auto",
        http=CoalescingHttpToolsProtocol if fast else "auto",
        server_header=False,
        date_header=True,
        # FORWARDED_ALLOW_IPS="" (the gateway's default) trusts no proxy, so uvicorn's
        # proxy-headers middleware could never change a request: leave its per-request
        # cost out (4.6% of the gateway's py-spy samples, loadtest/README.md).
        proxy_headers=os.environ.get("FORWARDED_ALLOW_IPS") != "",
        # With --workers the supervisor kills a worker that has not answered its
        # health ping in this many seconds, starting ones included: uvicorn's 5 s
        # default restarts workers forever on a busy host or a small CPU limit,
        # where importing a service alone takes longer.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
