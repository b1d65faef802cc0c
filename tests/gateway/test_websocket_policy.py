"""A route's traffic policy on WebSocket handshakes, against real processes.

One gateway for the module over one fake backend (its greeting shows the
handshake it received), with a route per policy: a CORS origin list (the
handshake's ``Origin`` is checked: cross-site WebSocket hijacking), ``*``,
a quota, a rate limit with a quota, and request header rules. A handshake is
a request: it is counted and refused (a real HTTP answer before the upgrade)
as an HTTP request of its route would be.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import pytest
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import AUDIENCE, ISSUER, KeyServer
from support.processes import ServiceProcess
from support.websocket import greeting, header_map, refused, ws_connect
from websockets.http11 import Response

APP = "https://app.example.com"
ADMIN_APP = "https://admin.example.com"
CORS = "cors-ws.gatehouse.test"
ANY = "any-ws.gatehouse.test"
QUOTA = "quota-ws.gatehouse.test"
METERED = "metered-ws.gatehouse.test"
LIMITED = "limited-ws.gatehouse.test"
RULES = "rules-ws.gatehouse.test"
ANSWERS = "answers-ws.gatehouse.test"
HSTS = "max-age=63072000"
# Months, not days: a test run near midnight UTC stays in one window.
MONTHLY = {"name": "monthly", "limit": 2, "period": "month"}
# What differs between two answers whatever the policy (and a refused upgrade's
# connection is closed by the server): not compared.
_PER_ANSWER = {"date", "server", "x-request-id", "content-length", "connection"}
# Seconds counting down between the two answers compared: names compared, not values.
_TIMED = {"retry-after", "ratelimit"}


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> ServiceProcess:
    return module_launcher.backends(1, prefix="wsp")[0]


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, keys: KeyServer, backend: ServiceProcess) -> GatewayProcess:
    document = {
        "auth": {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5},
        "routes": [
            gateway_route(
                [backend],
                name="cors-ws",
                hosts=[CORS],
                auth="required",
                cors={"allow_origins": [APP, ADMIN_APP], "allow_credentials": True},
            ),
            gateway_route([backend], name="any-ws", hosts=[ANY], cors={"allow_origins": ["*"]}),
            gateway_route(
                [backend], name="quota-ws", hosts=[QUOTA], auth="required", quotas=[MONTHLY]
            ),
            gateway_route(
                [backend],
                name="metered-ws",
                hosts=[METERED],
                auth="required",
                rate_limits=[
                    {"name": "per-key", "key": {"by": "api_key"}, "rate": 1, "per": "hour"}
                ],
                quotas=[{**MONTHLY, "limit": 5}],
            ),
            gateway_route(
                [backend],
                name="limited-ws",
                hosts=[LIMITED],
                auth="required",
                rate_limits=[{"name": "per-subject", "rate": 1, "per": "hour", "headers": True}],
            ),
            gateway_route(
                [backend],
                name="rules-ws",
                hosts=[RULES],
                headers={"request": {"set": {"origin": APP}, "remove": ["cookie"]}},
            ),
            gateway_route(
                [backend],
                name="answers-ws",
                hosts=[ANSWERS],
                auth="required",
                cors={"allow_origins": [APP]},
                headers={
                    "response": {
                        "set": {"Strict-Transport-Security": HSTS, "x-served-by": "gatehouse"},
                        "add": {"x-answer-id": "{request_id}", "x-subject": "{subject}"},
                        "remove": ["x-backend-note"],
                    }
                },
            ),
        ],
    }
    return module_launcher.gateway(document)


def bearer(keys: KeyServer, subject: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {keys.token(sub=subject)}")


def http_get(gateway: GatewayProcess, host: str, *headers: tuple[str, str]) -> httpx.Response:
    return httpx.get(gateway.url + "/ws", headers=[("Host", host), *headers], timeout=10)


def policy_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """An answer's policy headers, lower case; values that count down left out."""
    lower = ((name.lower(), value) for name, value in items)
    return sorted(
        (name, "" if name in _TIMED else value) for name, value in lower if name not in _PER_ANSWER
    )


def same_headers(socket: Response, http: httpx.Response) -> bool:
    return policy_headers(socket.headers.raw_items()) == policy_headers(http.headers.multi_items())


def origin_refusals(gateway: GatewayProcess) -> float:
    return metric_value(
        gateway.metrics(), "gateway_websocket_refusals_total", reason="origin_not_allowed"
    )


# --- the Origin check (CORS routes) --------------------------------------------------


@pytest.mark.parametrize("origin", [APP, ADMIN_APP])
async def test_a_listed_origin_opens_a_socket_and_the_backend_sees_it(
    gateway: GatewayProcess, keys: KeyServer, origin: str
) -> None:
    headers = [bearer(keys, "ada"), ("Origin", origin)]
    async with ws_connect(gateway.url, host=CORS, headers=headers) as socket:
        seen = header_map(await greeting(socket))
        assert socket.response is not None
        answer = socket.response.headers
    assert seen["origin"] == origin
    # the 101 is no CORS answer: browsers read no header of it
    assert not [name for name in answer if name.lower().startswith("access-control-")]


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "",
        "https://evil.example",
        "https://app.example.com.evil.net",
        "https://evil-app.example.com",
        "https://evilapp.example.com",
        "https://app.example.co",
        "HTTPS://app.example.com",
        "https://APP.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com:443",
        "https://app.example.com:8443",
        "http://app.example.com",
        "wss://app.example.com",
        "https://app.example.com.",
        "https://app.example.com, https://evil.example",
    ],
)
async def test_a_cross_site_handshake_is_refused_403_before_auth(
    gateway: GatewayProcess, origin: str
) -> None:
    before = origin_refusals(gateway)
    # no token: the Origin is judged first, as a preflight is, so the page learns nothing more
    answer = await refused(ws_connect(gateway.url, host=CORS, headers=[("Origin", origin)]))
    assert answer.status_code == 403
    assert b'"error":"cors_origin_not_allowed"' in answer.body.replace(b" ", b"")
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
    assert origin_refusals(gateway) == before + 1


@pytest.mark.parametrize("second", ["https://evil.example", APP])
async def test_two_origin_headers_are_refused_by_the_server_before_the_gateway(
    gateway: GatewayProcess, keys: KeyServer, second: str
) -> None:
    # ambiguous, so allowed for neither: uvicorn's WebSocket protocol answers 400 itself
    headers = [bearer(keys, "ada"), ("Origin", APP), ("Origin", second)]
    for host in (CORS, ANY):
        answer = await refused(ws_connect(gateway.url, host=host, headers=headers))
        assert answer.status_code == 400


async def test_a_cross_site_handshake_is_refused_even_with_a_good_token(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    # a browser sends the user's cookies or credentials with it: that is the hijack
    headers = [bearer(keys, "ada"), ("Origin", "https://evil.example")]
    answer = await refused(ws_connect(gateway.url, host=CORS, headers=headers))
    assert answer.status_code == 403


async def test_no_origin_is_a_non_browser_client_and_passes(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    # every browser sends Origin on a WebSocket handshake (RFC 6455 section 4.1)
    async with ws_connect(gateway.url, host=CORS, headers=[bearer(keys, "ada")]) as socket:
        assert "origin" not in header_map(await greeting(socket))


@pytest.mark.parametrize("origin", ["https://anyone.example", "null"])
async def test_a_route_open_to_any_origin_takes_any(gateway: GatewayProcess, origin: str) -> None:
    async with ws_connect(gateway.url, host=ANY, headers=[("Origin", origin)]) as socket:
        assert header_map(await greeting(socket))["origin"] == origin


# --- quotas and rate limits ----------------------------------------------------------


async def test_handshakes_count_against_the_quota_like_http_requests(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = bearer(keys, "socket-quota")
    for remaining in (1, 0):
        async with ws_connect(gateway.url, host=QUOTA, headers=[token]) as socket:
            await greeting(socket)
            assert socket.response is not None
            usage = socket.response.headers
        # the 101 carries the usage, as an allowed HTTP answer does
        assert usage["ratelimit-policy"].startswith('"monthly";q=2;w=')
        assert usage["ratelimit"].startswith(f'"monthly";r={remaining};t=')
    answer = await refused(ws_connect(gateway.url, host=QUOTA, headers=[token]))
    assert answer.status_code == 429
    assert b'"quota_exceeded"' in answer.body
    # HTTP sees the same count, spent, and is answered with the same headers
    http = http_get(gateway, QUOTA, token)
    assert http.status_code == 429
    assert same_headers(answer, http)
    assert "retry-after" in http.headers


async def test_http_requests_spend_the_quota_a_handshake_then_finds_spent(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = bearer(keys, "http-then-socket")
    assert [http_get(gateway, QUOTA, token).status_code for _ in range(2)] == [200, 200]
    assert (await refused(ws_connect(gateway.url, host=QUOTA, headers=[token]))).status_code == 429


async def test_a_handshake_the_rate_limit_refuses_spends_no_quota(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = bearer(keys, "metered")
    one, two = ("X-Api-Key", "key-one"), ("X-Api-Key", "key-two")
    async with ws_connect(gateway.url, host=METERED, headers=[token, one]) as socket:
        assert socket.response is not None
        assert socket.response.headers["ratelimit"].startswith('"monthly";r=4;')
    answer = await refused(ws_connect(gateway.url, host=METERED, headers=[token, one]))
    assert answer.status_code == 429
    assert b'"rate_limited"' in answer.body
    async with ws_connect(gateway.url, host=METERED, headers=[token, two]) as socket:
        assert socket.response is not None
        assert socket.response.headers["ratelimit"].startswith('"monthly";r=3;')


async def test_a_rate_limited_handshake_is_a_429_with_the_http_headers(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = bearer(keys, "limited-socket")
    async with ws_connect(gateway.url, host=LIMITED, headers=[token]) as socket:
        assert socket.response is not None
        assert socket.response.headers["ratelimit"] == '"per-subject";r=0;t=3600'
    answer = await refused(ws_connect(gateway.url, host=LIMITED, headers=[token]))
    http = http_get(gateway, LIMITED, token)
    assert answer.status_code == http.status_code == 429
    assert answer.body == http.content
    assert same_headers(answer, http)
    assert {"retry-after", "ratelimit-policy", "ratelimit"} <= set(http.headers)


# --- request header rules ------------------------------------------------------------


async def test_request_rules_reach_the_backend_s_handshake_as_on_http(
    gateway: GatewayProcess,
) -> None:
    sent = [("Origin", "https://elsewhere.example"), ("Cookie", "session=1")]
    async with ws_connect(gateway.url, host=RULES, headers=sent) as socket:
        hello = await greeting(socket)
    origins = [value for name, value in hello["headers"] if name == "origin"]
    seen = header_map(hello)
    assert origins == [APP]  # set: the client's value replaced, not sent beside it
    assert "cookie" not in seen
    seen_on_http = http_get(gateway, RULES, *sent).json()["headers"]
    assert seen_on_http["origin"] == APP
    assert "cookie" not in seen_on_http


# --- response header rules: the 101 and the refusals are answers of the route ----------


def _rules_applied(headers: dict[str, str] | Response) -> None:
    """The route's literal response rules, and ``{request_id}`` as the answer's own id."""
    found = headers.headers if isinstance(headers, Response) else headers
    assert found["strict-transport-security"] == HSTS
    assert found["x-served-by"] == "gatehouse"
    assert found["x-answer-id"] == found["x-request-id"]


async def test_response_rules_reach_the_101_beside_the_handshake_s_own_headers(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    sent = [bearer(keys, "ruled-socket"), ("Origin", APP)]
    async with ws_connect(gateway.url, host=ANSWERS, headers=sent) as socket:
        assert socket.response is not None
        answer = socket.response
        hello = await greeting(socket)  # the socket works: the handshake is intact
    assert answer.status_code == 101
    _rules_applied(answer)
    assert answer.headers["x-subject"] == "ruled-socket"  # from the verified token
    for own in ("sec-websocket-accept", "upgrade", "connection"):
        assert len(answer.headers.get_all(own)) == 1, own
    assert hello["path"] == "/ws"


async def test_response_rules_remove_what_the_backend_s_101_says(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    # without a rule the backend's own 101 header reaches the client
    async with ws_connect(gateway.url, "/ws?note=kept", host=RULES) as socket:
        assert socket.response is not None
        assert socket.response.headers["x-backend-note"] == "kept"
    token = bearer(keys, "ruled-socket")
    async with ws_connect(gateway.url, "/ws?note=gone", host=ANSWERS, headers=[token]) as socket:
        assert socket.response is not None
        assert "x-backend-note" not in socket.response.headers
        assert (await greeting(socket))["query"] == "note=gone"


async def test_response_rules_reach_a_refused_handshake_as_an_http_refusal(
    gateway: GatewayProcess,
) -> None:
    chosen = ("X-Request-ID", "client-chosen-refusal-id")
    answer = await refused(ws_connect(gateway.url, host=ANSWERS, headers=[("Origin", APP), chosen]))
    http = http_get(gateway, ANSWERS, ("Origin", APP), chosen)
    assert answer.status_code == http.status_code == 401
    # the id the HTTP path answers with, the one the rules' {request_id} names
    assert answer.headers["x-request-id"] == http.headers["x-request-id"] == chosen[1]
    _rules_applied(answer)
    _rules_applied(dict(http.headers))
    assert "x-subject" not in answer.headers  # no verified token, no value from it

    def compared(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        # a handshake's answers carry no CORS headers: browsers expose none of them
        cors = ("access-control-", "vary", "x-answer-id")
        return [(n, v) for n, v in policy_headers(items) if not n.startswith(cors)]

    assert compared(answer.headers.raw_items()) == compared(http.headers.multi_items())


async def test_response_rules_reach_a_cross_site_refusal(gateway: GatewayProcess) -> None:
    answer = await refused(
        ws_connect(gateway.url, host=ANSWERS, headers=[("Origin", "https://evil.example")])
    )
    assert answer.status_code == 403
    _rules_applied(answer)
    assert b"cors_origin_not_allowed" in answer.body
