"""Attack 8: header fields smuggled in a chunked body's trailer.

A trailer arrives after the body, yet a parser that appends trailer fields to
the request's header list (uvicorn's httptools protocol shares one list
between the parser and the ASGI scope) lets a client add ``Host`` or an
identity header after the gateway's checks were meant to run. The contract:
trailers never merge into the request headers; the route comes from the head,
and the backend never sees a trailer field as a header.
"""

from __future__ import annotations

from typing import Any

import pytest
from adversarial.raw import RawResponse, exchange
from adversarial.support import route
from support.gateway import HOST, GatewayProcess, Launcher
from support.jwks import KeyServer

OTHER_HOST = "other.example"
BODY = b"hello"


@pytest.fixture(scope="module")
def backends(module_launcher: Launcher) -> list[Any]:
    return module_launcher.backends(2, prefix="trailer")


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, backends: list[Any], auth_section: dict[str, Any]
) -> GatewayProcess:
    document = {
        "auth": auth_section,
        "routes": [
            route("app", [backends[0]], [HOST], auth="required"),
            route("other", [backends[1]], [OTHER_HOST]),
        ],
    }
    return module_launcher.gateway(document)


def _chunked_post(gateway: GatewayProcess, head: list[str], trailer: list[str]) -> RawResponse:
    """The whole request in one write, so the trailer is parsed before the app runs."""
    data = (
        "POST /upload HTTP/1.1\r\n"
        + "".join(f"{line}\r\n" for line in head)
        + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(BODY):x}\r\n{BODY.decode()}\r\n0\r\n"
        + "".join(f"{line}\r\n" for line in trailer)
        + "\r\n"
    ).encode()
    return exchange(gateway.url, data)


TRAILER = [f"Host: {OTHER_HOST}", "X-Auth-Roles: admin", "X-Smuggled: yes"]


def test_trailer_fields_neither_route_nor_reach_the_backend(
    gateway: GatewayProcess, keys: KeyServer, backends: list[Any]
) -> None:
    head = [f"Host: {HOST}", f"Authorization: Bearer {keys.token()}"]
    response = _chunked_post(gateway, head, TRAILER)
    echo = response.echo
    assert echo is not None, response.describe()
    headers = echo["headers"]
    assert echo["instance"] == backends[0].name, (
        f"routed by the trailer's Host to {echo['instance']}; the backend saw {headers}"
    )
    assert headers.get("x-forwarded-host") == HOST, headers
    assert headers.get("x-auth-roles") == "user", headers
    assert "x-smuggled" not in headers, f"a trailer field reached the backend: {headers}"
    assert echo["body"]["size"] == len(BODY), echo["body"]


def test_trailer_cannot_authenticate(gateway: GatewayProcess, keys: KeyServer) -> None:
    """No token in the head: a token in the trailer must not count."""
    response = _chunked_post(gateway, [f"Host: {HOST}"], [f"Authorization: Bearer {keys.token()}"])
    echo = response.echo
    assert response.status == 401, f"a token sent only in the trailer got {response.status}" + (
        f"; the backend saw {echo['headers']}" if echo else ""
    )
