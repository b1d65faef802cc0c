"""Attack 1: a client names its own identity with headers the gateway sets.

The gateway sets ``X-Auth-Subject``, ``X-Auth-Email`` and ``X-Auth-Roles``
from the verified token. Many backends (anything behind CGI or WSGI, nginx's
``underscores_in_headers on``, Rails, PHP) fold ``_`` into ``-`` and case
away, so ``X_Auth_Roles: admin`` is ``X-Auth-Roles: admin`` to them: every
spelling must be stopped at the edge. By default (``edge.underscores_in_headers:
drop``) no header whose name holds ``_`` reaches a backend; ``reject`` answers
400; ``allow`` passes ordinary ones but never an identity spelling.
"""

from __future__ import annotations

from typing import Any

import pytest
from adversarial.raw import RawResponse, exchange, request_bytes
from adversarial.support import route
from support.gateway import HOST, GatewayProcess, Launcher
from support.jwks import KeyServer

FORGED = [
    ("X_Auth_Roles", "admin"),
    ("X_Auth_Subject", "1"),
    ("X_Auth_Email", "root@example.com"),
    ("x-auth-roles", "admin"),
    ("X-AUTH-ROLES", "admin"),
    ("X_AUTH-roles", "admin"),
    ("x-auth_subject", "1"),
    ("X-Auth-Roles ", "admin"),  # a space before the colon: RFC 9112 says reject
]


def _send(gateway: GatewayProcess, token: str, extra: list[tuple[str, str]]) -> RawResponse:
    headers = [("Host", HOST), ("Authorization", f"Bearer {token}"), *extra]
    headers.append(("Connection", "close"))
    return exchange(gateway.url, request_bytes("GET", "/me", headers))


def _identity(echo: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in echo["headers"].items() if k.replace("_", "-").startswith("x-auth")}


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> Any:
    return module_launcher.backends(1, prefix="identity")[0]


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, backend: Any, auth_section: dict[str, Any]
) -> GatewayProcess:
    document = {"auth": auth_section, "routes": [route("app", [backend], [HOST], auth="required")]}
    return module_launcher.gateway(document)


@pytest.mark.parametrize(("name", "value"), FORGED, ids=[n for n, _ in FORGED])
def test_forged_identity_spelling_never_reaches_the_backend(
    gateway: GatewayProcess, keys: KeyServer, name: str, value: str
) -> None:
    response = _send(gateway, keys.token(), [(name, value)])
    if response.status == 400 and name.endswith(" "):
        return  # refusing the malformed field outright is the other right answer
    echo = response.echo
    assert echo is not None, f"{name!r}: no backend answer: {response.describe()}"
    identity = _identity(echo)
    assert echo["headers"].get("x-auth-roles") == "user", (
        f"{name}: {value} -> backend saw roles {identity}"
    )
    assert echo["headers"].get("x-auth-subject") == "42", f"{name} -> backend saw {identity}"
    underscored = {k: v for k, v in echo["headers"].items() if "_" in k}
    assert not underscored, f"{name}: {value} went through as {underscored}"
    assert value not in identity.values() or value == "user", f"{name} -> {identity}"


def test_all_spellings_at_once(gateway: GatewayProcess, keys: KeyServer) -> None:
    """Several copies in one request: none of them is taken, whatever the order."""
    response = _send(gateway, keys.token(), [pair for pair in FORGED if not pair[0].endswith(" ")])
    echo = response.echo
    assert echo is not None, response.describe()
    identity = _identity(echo)
    assert identity == {
        "x-auth-subject": "42",
        "x-auth-email": "ada@example.com",
        "x-auth-roles": "user",
    }, f"the backend saw identity headers {identity}"


def _edge_gateway(
    launcher: Launcher, backend: Any, auth_section: dict[str, Any], policy: str
) -> GatewayProcess:
    document = {
        "auth": auth_section,
        "edge": {"underscores_in_headers": policy},
        "routes": [route("app", [backend], [HOST], auth="required")],
    }
    return launcher.gateway(document)


def test_reject_policy_answers_400_json(
    launcher: Launcher, backend: Any, auth_section: dict[str, Any], keys: KeyServer
) -> None:
    gateway = _edge_gateway(launcher, backend, auth_section, "reject")
    for name, value in [("X_Auth_Roles", "admin"), ("X_Custom_Thing", "1")]:
        response = _send(gateway, keys.token(), [(name, value)])
        assert response.status == 400, f"{name} with reject: {response.describe()}"
        assert response.json()["error"], response.describe()
    clean = _send(gateway, keys.token(), [("X-Custom-Thing", "1")])
    assert clean.status == 200, f"a clean request with reject: {clean.describe()}"


def test_allow_policy_passes_ordinary_underscores_never_identity(
    launcher: Launcher, backend: Any, auth_section: dict[str, Any], keys: KeyServer
) -> None:
    gateway = _edge_gateway(launcher, backend, auth_section, "allow")
    forged = [pair for pair in FORGED if not pair[0].endswith(" ")]
    response = _send(gateway, keys.token(), [("X_Custom_Thing", "kept"), *forged])
    echo = response.echo
    assert echo is not None, response.describe()
    assert echo["headers"].get("x_custom_thing") == "kept", (
        f"allow dropped an ordinary underscore header: {echo['headers']}"
    )
    identity = _identity(echo)
    assert identity == {
        "x-auth-subject": "42",
        "x-auth-email": "ada@example.com",
        "x-auth-roles": "user",
    }, f"with allow, the backend saw identity headers {identity}"
