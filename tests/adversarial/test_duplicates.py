"""Attack 5: headers that say two things, and a target that disagrees with Host.

Two ``Authorization`` headers: the gateway may verify one while the backend
reads the other. Two ``Host`` headers: the gateway may route by one while the
backend serves the other. Both are refused (400), as RFC 9112 section 3.2
requires for Host. An absolute-form target (``GET http://other.example/x``)
names the authority itself; RFC 9112 section 3.2.2 says it wins over Host, so
the gateway must route by it, or a client reaches route A's backend with
route B's rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from adversarial.raw import RawResponse, exchange, request_bytes
from adversarial.support import route
from support.gateway import HOST, GatewayProcess, Launcher
from support.jwks import KeyServer

OPEN_HOST = "open.gatehouse.test"
OTHER_HOST = "other.example"


@pytest.fixture(scope="module")
def backends(module_launcher: Launcher) -> list[Any]:
    return module_launcher.backends(2, prefix="dup")


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, backends: list[Any], auth_section: dict[str, Any]
) -> GatewayProcess:
    first, second = backends
    document = {
        "auth": auth_section,
        "routes": [
            route("app", [first], [HOST], auth="required"),
            route("open", [first], [OPEN_HOST]),
            route("other", [second], [OTHER_HOST]),
        ],
    }
    return module_launcher.gateway(document)


def _send(gateway: GatewayProcess, target: str, headers: list[tuple[str, str]]) -> RawResponse:
    return exchange(gateway.url, request_bytes("GET", target, [*headers, ("Connection", "close")]))


@pytest.mark.parametrize("valid_first", [True, False], ids=["valid-first", "valid-second"])
def test_two_authorization_headers_are_refused(
    gateway: GatewayProcess, keys: KeyServer, valid_first: bool
) -> None:
    valid = ("Authorization", f"Bearer {keys.token()}")
    forged = ("Authorization", f"Bearer {keys.token(roles=['admin'], key=None)[:-8]}AAAAAAAA")
    pair = [valid, forged] if valid_first else [forged, valid]
    response = _send(gateway, "/me", [("Host", HOST), *pair])
    echo = response.echo
    seen = echo["headers"].get("authorization") if echo else None
    assert response.status == 400, (
        f"two Authorization headers got {response.status}; the backend saw {seen!r}: "
        f"{response.describe()[:300]}"
    )


def test_two_host_headers_are_refused(gateway: GatewayProcess) -> None:
    response = _send(gateway, "/x", [("Host", OPEN_HOST), ("Host", OTHER_HOST)])
    echo = response.echo
    assert response.status == 400, (
        f"two Host headers got {response.status}"
        + (f", served by {echo['instance']}" if echo else "")
        + f": {response.describe()[:300]}"
    )


def test_absolute_form_routes_by_its_authority(
    gateway: GatewayProcess, backends: list[Any]
) -> None:
    response = _send(gateway, f"http://{OTHER_HOST}/x", [("Host", OPEN_HOST)])
    echo = response.echo
    assert echo is not None, response.describe()
    assert echo["instance"] == backends[1].name, (
        f"GET http://{OTHER_HOST}/x with Host {OPEN_HOST} was served by {echo['instance']} "
        f"(route 'other' is {backends[1].name}); the backend saw {echo['headers']}"
    )
    assert echo["path"] == "/x", echo
    assert echo["headers"].get("x-forwarded-host") == OTHER_HOST, echo["headers"]


def test_absolute_form_to_an_auth_route_needs_a_token(gateway: GatewayProcess) -> None:
    """Host names an open route, the target an auth route: the target decides, so 401."""
    response = _send(gateway, f"http://{HOST}/me", [("Host", OPEN_HOST)])
    echo = response.echo
    assert response.status == 401, (
        f"GET http://{HOST}/me with Host {OPEN_HOST} and no token got {response.status}"
        + (f" from {echo['instance']} as {echo['path']!r}" if echo else "")
    )
