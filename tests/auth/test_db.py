"""A database outage answers 503 quickly, and the service recovers without a restart.

The shared PostgreSQL server is never stopped: the service reaches its own
database through a proxy in this process, which the test cuts and restores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from auth.tcp_proxy import TcpProxy
from support.auth import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, StartAuth, login_token, signup
from support.databases import temporary_database
from support.processes import free_port

# Functional bound, not a speed claim: the connect timeout plus a loaded machine.
OUTAGE_ANSWER_WITHIN_SECONDS = 20
# libpq's smallest connect timeout (the default is 3 s): each request during the
# black-holed outage waits it out, so it sets how long the test takes.
CONNECT_TIMEOUT = "2"


@pytest.fixture
def proxied_database() -> Iterator[tuple[str, TcpProxy]]:
    """A database of this test's own, reached through a proxy the test controls."""
    with temporary_database("outage") as url:
        parts = urlsplit(url)
        proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432), free_port())
        proxy.open()
        netloc = (
            f"{parts.username}@127.0.0.1:{proxy.port}"
            if parts.username
            else f"127.0.0.1:{proxy.port}"
        )
        try:
            yield urlunsplit(parts._replace(netloc=netloc)), proxy
        finally:
            proxy.close()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "database_unavailable"
    assert body["detail"]
    assert "Traceback" not in response.text


def test_database_down_is_503_and_back_works_without_restart(
    start_auth: StartAuth, proxied_database: tuple[str, TcpProxy]
) -> None:
    url, proxy = proxied_database
    service = start_auth(
        name="outage", database_url=url, redis=False, db_connect_timeout=CONNECT_TIMEOUT
    )
    pid = service.process.pid
    with httpx.Client(base_url=service.url, timeout=60) as client:
        account = signup(client)
        admin = login_token(client, ADMIN_EMAIL, ADMIN_PASSWORD)

        for outage in (proxy.close, proxy.blackhole):
            outage()
            body = {
                "username": f"during_{outage.__name__}",
                "email": f"{outage.__name__}@example.com",
                "password": PASSWORD,
            }
            started = time.monotonic()
            response = client.post("/account", json=body)
            elapsed = time.monotonic() - started
            _assert_unavailable(response)
            assert elapsed < OUTAGE_ANSWER_WITHIN_SECONDS
            _assert_unavailable(
                client.post("/login", json={"email": account["email"], "password": PASSWORD})
            )
            _assert_unavailable(
                client.get("/accounts", headers={"Authorization": f"Bearer {admin}"})
            )
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"]["ok"] is False
            # what needs no database keeps working
            assert client.get("/healthz").status_code == 200
            assert client.get("/.well-known/jwks.json").status_code == 200

            proxy.close()
            proxy.open()
            assert client.get("/readyz").status_code == 200
            assert login_token(client, account["email"], PASSWORD)
            signup(client)
            page = client.get("/accounts", headers={"Authorization": f"Bearer {admin}"})
            assert page.status_code == 200
    assert service.process.pid == pid and service.process.process.poll() is None
    log = service.process.log_text()
    assert "Traceback" not in log
