"""CORS, header rules and path rewriting through a real gateway process.

One gateway for the module, in front of a fake backend (its echo shows what
the backend saw) and a raw backend that answers with its own CORS headers and
redirects into its own path space, which the gateway must replace and map back.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.gateway import (
    GatewayProcess,
    Launcher,
    RawBackend,
    gateway_route,
    metric_value,
    write_yaml,
)
from support.jwks import AUDIENCE, ISSUER, KeyServer
from support.processes import REPO_ROOT, ServiceProcess
from support.websocket import greeting, header_map, ws_connect

APP = "https://app.example.com"
CORS = "cors.gatehouse.test"
OPEN = "open.gatehouse.test"
RULES = "rules.gatehouse.test"
REWRITE = "rewrite.gatehouse.test"
REPLACE = "replace.gatehouse.test"


@pytest.fixture(scope="module")
def raw_backend() -> Iterator[RawBackend]:
    raw = RawBackend(b"")
    raw.response = (
        b"HTTP/1.1 302 Found\r\n"
        b"Location: /v2/login?next=/v2/x\r\n"
        b"Content-Location: " + raw.url.encode() + b"/v2/doc\r\n"
        b"Access-Control-Allow-Origin: https://evil.example\r\n"
        b"Access-Control-Allow-Credentials: true\r\n"
        b"Access-Control-Expose-Headers: x-secret\r\n"
        b"X-Backend: raw\r\n"
        b"Content-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
    yield raw
    raw.close()


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher,
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
    raw_backend: RawBackend,
) -> GatewayProcess:
    backend = backend_pool[0]
    document = {
        "auth": {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5},
        "routes": [
            gateway_route(
                [backend],
                name="cors",
                hosts=[CORS],
                auth="required",
                cors={
                    "allow_origins": [APP, "https://admin.example.com"],
                    "allow_methods": ["GET", "POST", "PUT"],
                    "allow_headers": ["content-type", "x-trace"],
                    "expose_headers": ["x-total"],
                    "allow_credentials": True,
                    "max_age": 600,
                },
            ),
            gateway_route(
                [raw_backend.url], name="open", hosts=[OPEN], cors={"allow_origins": ["*"]}
            ),
            gateway_route(
                [backend],
                name="rules",
                hosts=[RULES],
                auth="required",
                headers={
                    "request": {
                        "set": {
                            "x-tenant": "{claim.tenant}",
                            "x-caller": "{subject}@{client_address}",
                        },
                        "add": {"x-request-copy": "{request_id}"},
                        "remove": ["cookie", "authorization"],
                    },
                    "response": {
                        "set": {"x-served-by": "gatehouse {{edge}}"},
                        "add": {"x-user": "{subject}"},
                        "remove": ["x-backend-instance"],
                    },
                },
            ),
            gateway_route(
                [backend],
                name="rewrite",
                hosts=[REWRITE],
                path_prefix="/api",
                path_rewrite={"strip_prefix": "/api"},
                headers={
                    "request": {"set": {"x-rule": "rid {request_id}"}, "remove": ["x-drop-me"]}
                },
            ),
            gateway_route(
                [raw_backend.url],
                name="replace",
                hosts=[REPLACE],
                path_prefix="/v1",
                path_rewrite={"replace_prefix": {"from": "/v1", "to": "/v2"}},
                preserve_host=False,
            ),
        ],
    }
    return module_launcher.gateway(document)


def client(gateway: GatewayProcess, host: str) -> httpx.Client:
    return gateway.client(headers={"Host": host})


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def preflights(gateway: GatewayProcess, outcome: str) -> float:
    return metric_value(
        gateway.metrics(), "gateway_cors_preflights_total", route="cors", outcome=outcome
    )


def bearer(keys: KeyServer, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token(**claims)}"}


def preflight(origin: str, method: str = "PUT", requested: str | None = None) -> dict[str, str]:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if requested is not None:
        headers["Access-Control-Request-Headers"] = requested
    return headers


# --- CORS ---------------------------------------------------------------------------


def test_preflight_is_answered_at_the_gateway_before_auth(gateway: GatewayProcess) -> None:
    with client(gateway, CORS) as http:
        # no token: a preflight never carries one, and the route requires auth
        response = http.options("/items", headers=preflight(APP, "PUT", "Content-Type, X-Trace"))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert preflights(gateway, "allowed") >= 1
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, PUT",
        "access-control-allow-headers": "content-type, x-trace",
        "access-control-max-age": "600",
    }
    assert "Origin" in response.headers["vary"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "https://evil-example.com",  # a suffix match would take it
        "https://app.example.com.evil.net",  # a prefix match would take it
        "https://APP.example.com",
        "HTTPS://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com:443",
        "http://app.example.com",
    ],
)
def test_hostile_origins_get_403_and_no_cors_headers(
    gateway: GatewayProcess, keys: KeyServer, origin: str
) -> None:
    with client(gateway, CORS) as http:
        response = http.options("/items", headers=preflight(origin, "GET"))
        assert response.status_code == 403
        assert response.json()["error"] == "cors_origin_not_allowed"
        assert cors_headers(response) == {}
        actual = http.get("/items", headers={"Origin": origin, **bearer(keys)})
    assert actual.status_code == 200  # the backend answers; the browser will not show it
    assert cors_headers(actual) == {}
    assert "Origin" in actual.headers["vary"]


def test_two_origin_headers_are_not_allowed(gateway: GatewayProcess) -> None:
    headers = [
        ("Origin", APP),
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "GET"),
    ]
    with client(gateway, CORS) as http:
        response = http.options("/items", headers=headers)
    assert response.status_code == 403
    assert cors_headers(response) == {}


@pytest.mark.parametrize(
    ("method", "requested", "error"),
    [
        ("DELETE", None, "cors_method_not_allowed"),
        ("put", None, "cors_method_not_allowed"),
        ("PUT", "x-not-listed", "cors_headers_not_allowed"),
        ("PUT", "content-type, authorization", "cors_headers_not_allowed"),
        ("PUT", ", ".join(f"x-trace-{n}" for n in range(3000)), "cors_headers_not_allowed"),
        ("PUT", ",".join(["x-trace"] * 100), "cors_headers_not_allowed"),
    ],
)
def test_preflight_refuses_what_is_not_listed(
    gateway: GatewayProcess, method: str, requested: str | None, error: str
) -> None:
    outcome = error.removeprefix("cors_")
    before = preflights(gateway, outcome)
    with client(gateway, CORS) as http:
        response = http.options("/items", headers=preflight(APP, method, requested))
    assert response.status_code == 403
    assert response.json()["error"] == error
    assert preflights(gateway, outcome) == before + 1
    assert cors_headers(response) == {}


def test_actual_answers_carry_cors_for_allowed_origins_only(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    with client(gateway, CORS) as http:
        allowed = http.get("/items", headers={"Origin": APP, **bearer(keys)})
        other = http.get("/items", headers={"Origin": "https://admin.example.com", **bearer(keys)})
        # an OPTIONS without Access-Control-Request-Method is no preflight: auth applies,
        # and the 401 is readable by the allowed page
        refused = http.options("/items", headers={"Origin": APP})
        no_origin = http.get("/items", headers=bearer(keys))
    assert allowed.status_code == 200
    assert cors_headers(allowed) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "x-total",
    }
    assert allowed.headers["vary"] == "Origin"
    assert other.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP
    assert cors_headers(no_origin) == {}
    assert no_origin.headers["vary"] == "Origin"


def test_backend_cors_headers_are_replaced_by_the_gateways(gateway: GatewayProcess) -> None:
    with client(gateway, OPEN) as http:
        response = http.get("/x", headers={"Origin": "https://anyone.example"})
        bare = http.get("/x")
        ask = http.options("/x", headers=preflight("https://anyone.example", "GET"))
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert "access-control-allow-credentials" not in response.headers
    assert "access-control-expose-headers" not in response.headers
    assert response.headers["x-backend"] == "raw"  # the rest of the answer is the backend's
    assert cors_headers(bare) == {}
    assert ask.status_code == 204
    assert ask.headers["access-control-allow-origin"] == "*"


# --- header rules -----------------------------------------------------------------


def test_request_rules_fill_values_from_the_verified_token(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    forged = {"X-Tenant": "forged", "Cookie": "session=secret", "X-Request-Copy": "forged"}
    with client(gateway, RULES) as http:
        response = http.get("/me", headers={**forged, **bearer(keys, tenant="acme")})
    assert response.status_code == 200, response.text
    seen = response.json()["headers"]
    assert seen["x-tenant"] == "acme"
    assert seen["x-caller"] == "42@127.0.0.1"
    assert "cookie" not in seen
    # checked at the gateway, then kept from the backend
    assert "authorization" not in seen and seen["x-auth-subject"] == "42"
    # add appends to what the client sent; the template's value is the gateway's request id
    assert seen["x-request-copy"] == f"forged, {seen['x-request-id']}"
    assert response.headers["x-served-by"] == "gatehouse {edge}"
    assert response.headers["x-user"] == "42"
    assert "x-backend-instance" not in response.headers


@pytest.mark.parametrize(
    "claims",
    [{}, {"tenant": {"nested": "object"}}, {"tenant": "acme\r\nX-Auth-Roles: admin"}],
)
def test_a_missing_or_unsafe_claim_leaves_the_header_unset(
    gateway: GatewayProcess, keys: KeyServer, claims: dict[str, object]
) -> None:
    def unset() -> float:
        text = gateway.metrics()
        return metric_value(
            text, "gateway_header_rule_unset_total", route="rules", header="x-tenant"
        )

    before = unset()
    with client(gateway, RULES) as http:
        response = http.get("/me", headers={"X-Tenant": "forged", **bearer(keys, **claims)})
    assert response.status_code == 200, response.text
    seen = response.json()["headers"]
    assert "x-tenant" not in seen  # neither the claim nor the client's forged value
    assert seen["x-auth-roles"] == "user"
    assert unset() == before + 1  # counted, so an operator can see why


def test_response_rules_apply_to_the_gateways_own_answers(gateway: GatewayProcess) -> None:
    with client(gateway, RULES) as http:
        response = http.get("/me")  # no token: 401 from the gateway
    assert response.status_code == 401
    assert response.headers["x-served-by"] == "gatehouse {edge}"
    assert "x-user" not in response.headers  # nobody verified


# --- path rewriting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("/api/users?q=1&r=%2F", ("/users", "q=1&r=%2F")),
        ("/api", ("/", "")),
        ("/api/", ("/", "")),
        ("/api/a/../b", ("/b", "")),  # matched and rewritten in normal form
        ("/api//x", ("/x", "")),
    ],
)
def test_strip_prefix(gateway: GatewayProcess, path: str, seen: tuple[str, str]) -> None:
    with client(gateway, REWRITE) as http:
        response = http.get(path, headers={"X-Drop-Me": "1"})
    assert response.status_code == 200, response.text
    echo = response.json()
    assert (echo["path"], echo["query"]) == seen
    assert echo["headers"]["x-rule"] == f"rid {echo['headers']['x-request-id']}"
    assert "x-drop-me" not in echo["headers"]


def test_paths_outside_the_prefix_are_not_the_routes(gateway: GatewayProcess) -> None:
    with client(gateway, REWRITE) as http:
        assert http.get("/apix").status_code == 404
        assert http.get("/api/../etc").status_code == 404


def test_replace_prefix_maps_redirects_back(gateway: GatewayProcess) -> None:
    with client(gateway, REPLACE) as http:
        response = http.get("/v1/anything")
    assert response.status_code == 302
    # the backend's own space (/v2) is the client's /v1 again; a query is left alone
    assert response.headers["location"] == "/v1/login?next=/v2/x"
    # a URL naming the backend: its origin becomes the client's, then the path maps back
    assert response.headers["content-location"] == f"http://{REPLACE}/v1/doc"


# --- WebSocket handshake ---------------------------------------------------------


async def test_websocket_handshake_honours_rewrite_and_request_rules(
    gateway: GatewayProcess,
) -> None:
    async with ws_connect(
        gateway.url, "/api/ws?x=1", host=REWRITE, headers=[("X-Drop-Me", "1")]
    ) as socket:
        hello = await greeting(socket)
    seen = header_map(hello)
    assert (hello["path"], hello["query"]) == ("/ws", "x=1")
    assert seen["x-rule"] == f"rid {seen['x-request-id']}"
    assert "x-drop-me" not in seen


async def test_websocket_handshake_gets_claims(gateway: GatewayProcess, keys: KeyServer) -> None:
    token = keys.token(tenant="acme")
    headers = [("Authorization", f"Bearer {token}"), ("X-Tenant", "forged")]
    async with ws_connect(gateway.url, "/ws", host=RULES, headers=headers) as socket:
        hello = await greeting(socket)
    seen = header_map(hello)
    assert seen["x-tenant"] == "acme"
    assert seen["x-caller"] == "42@127.0.0.1"


# --- hostile config ----------------------------------------------------------------


def test_hostile_edge_rules_stop_the_gateway_with_the_key_paths(tmp_path: Path) -> None:
    backend = ["http://127.0.0.1:1"]
    document = {
        "routes": [
            gateway_route(
                backend, name="a", cors={"allow_origins": ["*"], "allow_credentials": True}
            ),
            gateway_route(
                backend,
                name="b",
                hosts=["b.test"],
                headers={"request": {"set": {"X-Auth-Roles": "admin"}}},
            ),
            gateway_route(
                backend,
                name="c",
                hosts=["c.test"],
                headers={"response": {"add": {"x-v": "a\r\nb"}}},
            ),
            gateway_route(
                backend,
                name="d",
                hosts=["d.test"],
                path_prefix="/api",
                path_rewrite={"strip_prefix": "api"},
            ),
        ]
    }
    config = tmp_path / "bad.yaml"
    write_yaml(config, document)
    result = subprocess.run(
        [sys.executable, "-m", "gatehouse_gateway", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    for where in [
        "routes[0].cors: Value error, allow_credentials",
        "route 'b': routes[1].headers.request.set: Value error, 'X-Auth-Roles': no rule may",
        "routes[2].headers.response.add: Value error, x-v:",
        "routes[3].path_rewrite.strip_prefix: Value error, 'api' must be an absolute path",
    ]:
        assert where in result.stderr, result.stderr
