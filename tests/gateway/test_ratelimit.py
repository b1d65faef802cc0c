"""Rate limits through a real gateway: the 429 answer, its headers, keys, WebSocket, operator view.

One gateway for the module, without Redis (each limit is then the process's
own, as in the demo), over one fake backend. Slow limits (per minute) make
every count exact whatever the machine's load: nothing refills during a test.
The shared mode and Redis outages are tests/gateway/test_ratelimit_replicas.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import yaml
from gateway.operator_support import wait_until
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import AUDIENCE, ISSUER, KeyServer
from support.processes import REPO_ROOT, ServiceProcess
from support.websocket import greeting, refused_status, ws_connect

LIMITED = "limited.gatehouse.test"
KEYED = "keyed.gatehouse.test"
DEMO_HOST = "service2.my-company.com"
ADMIN = "/-/admin"


def demo_limits() -> list[dict[str, object]]:
    """service2's limits as services/gateway/config/demo.yaml has them."""
    demo = yaml.safe_load((REPO_ROOT / "services/gateway/config/demo.yaml").read_text())
    (service2,) = [route for route in demo["routes"] if route["name"] == "service2"]
    limits: list[dict[str, object]] = service2["rate_limits"]
    return limits


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> ServiceProcess:
    return module_launcher.backends(1, prefix="rl")[0]


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, keys: KeyServer, backend: ServiceProcess) -> GatewayProcess:
    document = {
        "auth": {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5},
        "routes": [
            gateway_route(
                [backend],
                name="limited",
                hosts=[LIMITED],
                auth="required",
                rate_limits=[
                    {"name": "per-subject", "rate": 2, "per": "minute", "headers": True},
                    {"name": "route", "key": {"by": "route"}, "rate": 1000, "per": "minute"},
                ],
            ),
            gateway_route(
                [backend],
                name="keyed",
                hosts=[KEYED],
                rate_limits=[
                    {
                        "name": "per-key",
                        "key": {"by": "api_key", "name": "x-api-key"},
                        "rate": 1,
                        "per": "hour",
                    }
                ],
            ),
            gateway_route([backend], name="free"),
            gateway_route(
                [backend],
                name="service2",
                hosts=[DEMO_HOST],
                auth="required",
                rate_limits=demo_limits(),
            ),
        ],
    }
    return module_launcher.gateway(document)


def call(gateway: GatewayProcess, host: str, **headers: str) -> httpx.Response:
    return httpx.get(gateway.url + "/", headers={"Host": host, **headers}, timeout=10)


def bearer(keys: KeyServer, subject: str) -> str:
    return f"Bearer {keys.token(sub=subject)}"


def test_a_subject_past_its_limit_gets_429_json_with_the_ietf_headers(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = bearer(keys, "ada")
    first = call(gateway, LIMITED, Authorization=token)
    second = call(gateway, LIMITED, Authorization=token)
    assert first.status_code == second.status_code == 200
    # allowed answers carry the headers the limit asks for (headers: true)
    policy = '"per-subject";q=2;w=60, "route";q=1000;w=60'
    assert first.headers["ratelimit-policy"] == policy
    assert first.headers["ratelimit"] == '"per-subject";r=1;t=30'
    assert second.headers["ratelimit"] == '"per-subject";r=0;t=60'

    refused = call(gateway, LIMITED, Authorization=token)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    assert refused.json() == {
        "error": "rate_limited",
        "detail": "too many requests: 2 per minute (burst 2) per subject",
        "route": "limited",
        "limit": "per-subject",
    }
    assert refused.headers["ratelimit-policy"] == policy
    assert refused.headers["ratelimit"] == '"per-subject";r=0;t=60'
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert refused.headers["x-request-id"]

    # another subject has a bucket of its own
    assert call(gateway, LIMITED, Authorization=bearer(keys, "grace")).status_code == 200
    metrics = gateway.metrics()
    labels = {"route": "limited", "limit": "per-subject"}
    assert metric_value(metrics, "gateway_ratelimit_requests_total", decision="refused", **labels)

    def route_allowed() -> float:
        return metric_value(
            gateway.metrics(), "gateway_ratelimit_requests_total", route="limited",
            limit="route", decision="allowed",
        )  # fmt: skip

    # the refused request spent nothing of the route's limit: 3 allowed of 4 (allowed
    # requests reach the metric about once a second, off the request path)
    wait_until(lambda: route_allowed() == 3, "3 allowed by the route's limit")
    assert metric_value(metrics, "gateway_ratelimit_store_state", state="local") == 1


def test_a_websocket_handshake_counts_against_the_same_limit(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = {"Authorization": bearer(keys, "socket-user")}

    async def run() -> int:
        for _ in range(2):
            async with ws_connect(gateway.url, host=LIMITED, headers=token) as socket:
                await greeting(socket)
        return await refused_status(ws_connect(gateway.url, host=LIMITED, headers=token))

    assert asyncio.run(run()) == 429
    # and the HTTP side sees the same bucket, spent
    assert call(gateway, LIMITED, **token).status_code == 429


def test_api_keys_are_counted_apart_and_a_missing_key_shares_one_bucket(
    gateway: GatewayProcess,
) -> None:
    assert call(gateway, KEYED, **{"X-Api-Key": "key-one"}).status_code == 200
    assert call(gateway, KEYED, **{"X-Api-Key": "key-one"}).status_code == 429
    assert call(gateway, KEYED, **{"X-Api-Key": "key-two"}).status_code == 200
    # leaving the header out, or sending it empty, does not escape the limit
    assert call(gateway, KEYED).status_code == 200
    assert call(gateway, KEYED).status_code == 429
    assert call(gateway, KEYED, **{"X-Api-Key": ""}).status_code == 429
    # no headers where the limit does not ask for them, except on refusals
    allowed = call(gateway, KEYED, **{"X-Api-Key": "key-three"})
    assert "ratelimit" not in allowed.headers
    # a route without limits is not touched
    free = httpx.get(gateway.url + "/", headers={"Host": "app.gatehouse.test"}, timeout=10)
    assert free.status_code == 200 and "ratelimit" not in free.headers


def test_the_operator_sees_each_limit_and_who_was_refused_but_never_an_api_key(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    url = gateway.admin_url + ADMIN + "/ratelimits"
    assert httpx.get(url, timeout=10).status_code == 401
    user = {"Authorization": bearer(keys, "someone")}
    assert httpx.get(url, headers=user, timeout=10).status_code == 403
    for _ in range(3):
        call(gateway, KEYED, **{"X-Api-Key": "secret-key-value"})
    admin = {"Authorization": f"Bearer {keys.token(roles=['admin'])}"}
    response = httpx.get(url, headers=admin, timeout=10)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    view = response.json()
    assert view["store"]["state"] == "local" and view["store"]["shared"] is False
    routes = {route["name"]: route for route in view["routes"]}
    assert set(routes) == {"limited", "keyed", "service2"}  # not "free": it has none
    (per_key,) = routes["keyed"]["limits"]
    assert per_key["rate"] == 1 and per_key["per"] == "hour" and per_key["burst"] == 1
    assert per_key["refused"] >= 2
    refused = {entry["consumer"] for entry in per_key["recently_refused"]}
    assert any(consumer.startswith("sha256:") for consumer in refused)
    assert "secret-key-value" not in json.dumps(view)
    state = httpx.get(gateway.admin_url + ADMIN + "/state", headers=admin, timeout=10).json()
    assert state["rate_limits"]["routes"] == view["routes"]


def test_the_demo_limit_lets_a_burst_of_40_through_then_answers_429(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    assert demo_limits() == [
        {"name": "per-subject", "key": {"by": "subject"}, "rate": 20, "per": "second",
         "burst": 40, "headers": True}
    ]  # fmt: skip
    token = bearer(keys, "demo-user")
    statuses = []
    started = time.monotonic()
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        headers = {"Host": DEMO_HOST, "Authorization": token}
        for _ in range(120):  # far faster than 20/s on any machine that runs this suite
            response = client.get("/", headers=headers)
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused = response
    seconds = time.monotonic() - started
    assert statuses[:40] == [200] * 40  # the whole burst
    assert statuses.count(200) <= 40 + 20 * seconds + 1
    assert refused.headers["ratelimit-policy"] == '"per-subject";q=40;w=2'
    assert refused.headers["ratelimit"] == '"per-subject";r=0;t=2'
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "rate_limited"
