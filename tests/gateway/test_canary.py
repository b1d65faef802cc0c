"""Canary and header routing through a real gateway to real backends.

One gateway (no Redis) with three routes over two backends of the session's
pool, ``backend-1`` as primary and ``backend-2`` as the canary: one split by
header and cookie rules only, one by weight, one sticky per token subject.
The operator API's weights, their checks, their audit record and a reload
are tried on the same gateway (Redis is tried in test_canary_replicas.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway.operator_support import ADMIN, bearer, drain_path, wait_until
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess

RULES, WEIGHTED, STICKY, PLAIN = "rules.test", "weighted.test", "sticky.test", "plain.test"


def routes(pool: list[ServiceProcess], *, weighted: dict[str, int] | None = None) -> list[Any]:
    canary = [{"name": "canary", "backends": [{"url": pool[1].url}]}]
    return [
        gateway_route(
            pool[:1],
            name="rules",
            hosts=[RULES],
            groups=canary,
            split={
                "rules": [
                    {"header": "x-canary", "equals": "1", "group": "canary"},
                    {"cookie": "beta", "equals": "1", "group": "canary"},
                ]
            },
        ),
        gateway_route(
            pool[:1],
            name="weighted",
            hosts=[WEIGHTED],
            groups=canary,
            split={"weights": weighted or {"primary": 80, "canary": 20}},
        ),
        gateway_route(
            pool[:1],
            name="sticky",
            hosts=[STICKY],
            auth="required",
            groups=canary,
            split={"weights": {"primary": 50, "canary": 50}, "sticky": {"by": "subject"}},
        ),
        gateway_route(pool[:1], name="plain", hosts=[PLAIN]),
    ]


@pytest.fixture(scope="module")
def audit_keys() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


def document(keys: KeyServer, pool: list[ServiceProcess], **kwargs: Any) -> dict[str, Any]:
    return {"auth": {"jwks_url": keys.url}, "routes": routes(pool, **kwargs)}


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> GatewayProcess:
    env = {"GATEHOUSE_GATEWAY_AUTH_URL": audit_keys.base_url}
    return module_launcher.gateway(document(audit_keys, backend_pool), env=env)


def instances(gateway: GatewayProcess, host: str, count: int, **kwargs: Any) -> Counter[str]:
    seen: Counter[str] = Counter()
    with gateway.client(headers={"Host": host}) as client:
        for n in range(count):
            response = client.get(f"/canary/{n}", **kwargs)
            assert response.status_code == 200, response.text
            seen[response.headers["x-backend-instance"]] += 1
    return seen


def test_header_and_cookie_rules_send_to_the_canary_and_nothing_else_does(
    gateway: GatewayProcess,
) -> None:
    before = gateway.metrics()
    assert instances(gateway, RULES, 20, headers={"x-canary": "1"}) == {"backend-2": 20}
    assert instances(gateway, RULES, 10, headers={"cookie": "beta=1"}) == {"backend-2": 10}
    assert instances(gateway, RULES, 20) == {"backend-1": 20}
    assert instances(gateway, RULES, 10, headers={"x-canary": "yes"}) == {"backend-1": 10}
    assert instances(gateway, RULES, 10, headers={"cookie": "beta=0"}) == {"backend-1": 10}
    after = gateway.metrics()

    def counted(group: str) -> float:
        return metric_value(
            after, "gateway_group_requests_total", route="rules", group=group
        ) - metric_value(before, "gateway_group_requests_total", route="rules", group=group)

    assert (counted("canary"), counted("primary")) == (30, 40)


def test_weights_split_the_traffic_within_a_loose_bound(gateway: GatewayProcess) -> None:
    seen = instances(gateway, WEIGHTED, 300)
    assert sum(seen.values()) == 300
    # 20% of 300 is 60, one standard deviation about 7: far outside 30..100 is a bug
    assert 30 <= seen["backend-2"] <= 100, seen


def test_sticky_per_subject_keeps_each_user_on_one_group(
    gateway: GatewayProcess, audit_keys: KeyServer
) -> None:
    by_subject: dict[str, Counter[str]] = {}
    for n in range(16):
        token = audit_keys.token(sub=f"user-{n}")
        by_subject[f"user-{n}"] = instances(gateway, STICKY, 4, headers=bearer(token))
    assert all(len(seen) == 1 for seen in by_subject.values()), by_subject
    landed = {next(iter(seen)) for seen in by_subject.values()}
    assert landed == {"backend-1", "backend-2"}  # 16 users at 50/50 use both groups


def test_the_admin_state_shows_groups_and_weights(
    gateway: GatewayProcess, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> None:
    token = audit_keys.token(roles=["admin"])
    state = httpx.get(gateway.admin_url + ADMIN + "/state", headers=bearer(token)).json()
    view = {route["name"]: route for route in state["routes"]}
    canary = f"127.0.0.1:{backend_pool[1].port}"
    assert view["weighted"]["groups"] == [
        {
            "name": "primary",
            "strategy": "round_robin",
            "backends": [f"127.0.0.1:{backend_pool[0].port}"],
            "available_backends": 1,
        },
        {
            "name": "canary",
            "strategy": "round_robin",
            "backends": [canary],
            "available_backends": 1,
        },
    ]
    assert view["weighted"]["split"]["weights"] == {"primary": 80, "canary": 20}
    assert view["weighted"]["split"]["override"] is None
    assert view["rules"]["split"]["rules"][1] == {
        "cookie": "beta",
        "equals": "1",
        "group": "canary",
    }
    assert [b["group"] for b in view["weighted"]["backends"]] == ["primary", "canary"]
    assert view["plain"]["split"] is None and len(view["plain"]["groups"]) == 1
    assert state["canary_weights"]["store"] == "local"


def test_a_drained_canary_sends_its_requests_to_primary(
    gateway: GatewayProcess, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> None:
    token = audit_keys.token(roles=["admin"])
    canary = backend_pool[1]
    drain = httpx.post(
        gateway.admin_url + drain_path("rules", canary, "drain"), headers=bearer(token)
    )
    assert drain.status_code == 200 and drain.json()["drained"] is True
    try:
        before = metric_value(
            gateway.metrics(), "gateway_group_fallbacks_total", route="rules", group="canary"
        )
        assert instances(gateway, RULES, 10, headers={"x-canary": "1"}) == {"backend-1": 10}
        after = metric_value(
            gateway.metrics(), "gateway_group_fallbacks_total", route="rules", group="canary"
        )
        assert after - before == 10
        # the same backend in another route is not drained there
        assert instances(gateway, WEIGHTED, 60)["backend-2"] > 0
    finally:
        restore = drain_path("rules", canary, "restore")
        assert httpx.post(gateway.admin_url + restore, headers=bearer(token)).status_code == 200
    assert instances(gateway, RULES, 5, headers={"x-canary": "1"}) == {"backend-2": 5}


def weights_url(gateway: GatewayProcess, route: str) -> str:
    return f"{gateway.admin_url}{ADMIN}/routes/{route}/weights"


@pytest.mark.parametrize(
    ("route", "body", "status", "error"),
    [
        ("nope", {"weights": {"primary": 1}}, 404, "unknown_route"),
        ("plain", {"weights": {"primary": 1}}, 409, "no_groups"),
        ("weighted", {"weights": {"green": 1}}, 422, "unknown_group"),
        ("weighted", {"weights": {"primary": -1, "canary": 5}}, 422, "validation_error"),
        ("weighted", {"weights": {"primary": 0, "canary": 0}}, 422, "validation_error"),
        ("weighted", {"weights": {}}, 422, "validation_error"),
        ("weighted", {"weights": {"primary": "90"}}, 422, "validation_error"),
        ("weighted", {"weights": {"primary": 0.5}}, 422, "validation_error"),
        ("weighted", {"weights": {"primary": 10**7}}, 422, "validation_error"),
        ("weighted", {"weights": {"primary": 1}, "by": "me"}, 422, "validation_error"),
        ("weighted", {"weights": {"bad name": 1}}, 422, "validation_error"),
        ("weighted", {"weights": [["primary", 1]]}, 422, "validation_error"),
        ("weighted", None, 422, "validation_error"),
    ],
)
def test_bad_weight_changes_are_refused_and_change_nothing(
    gateway: GatewayProcess,
    audit_keys: KeyServer,
    route: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    token = audit_keys.token(roles=["admin"])
    response = httpx.put(weights_url(gateway, route), json=body, headers=bearer(token))
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    current = httpx.get(weights_url(gateway, "weighted"), headers=bearer(token)).json()
    assert current["weights"] == {"primary": 80, "canary": 20} and current["override"] is None


def test_only_an_admin_may_change_weights(gateway: GatewayProcess, audit_keys: KeyServer) -> None:
    body = {"weights": {"canary": 1}}
    url = weights_url(gateway, "weighted")
    assert httpx.put(url, json=body).status_code == 401
    assert httpx.delete(url).status_code == 401
    assert httpx.get(url).status_code == 401
    user = bearer(audit_keys.token(roles=["user"]))
    assert httpx.put(url, json=body, headers=user).status_code == 403
    assert httpx.delete(url, headers=user).status_code == 403
    forged = bearer(audit_keys.token(roles=["admin"])[:-4] + "AAAA")
    assert httpx.put(url, json=body, headers=forged).status_code == 401
    assert instances(gateway, WEIGHTED, 40)["backend-1"] > 0  # still the file's 80/20


def test_runtime_weights_apply_at_once_survive_a_reload_and_are_audited(
    gateway: GatewayProcess, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> None:
    token = audit_keys.token(roles=["admin"], sub="9", email="ops@example.com")
    audited = len(audit_keys.audit)
    url = weights_url(gateway, "weighted")

    response = httpx.put(url, json={"weights": {"canary": 1}}, headers=bearer(token))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["weights"] == {"primary": 0, "canary": 1}
    assert result["previous_weights"] == {"primary": 80, "canary": 20}
    assert result["override"]["by"] == "ops@example.com"
    assert result["shared"] is False and result["stored_in_redis"] is False
    assert instances(gateway, WEIGHTED, 30) == {"backend-2": 30}

    # a reload with other file weights: the override still decides
    reloaded = config_version(gateway) + 1
    gateway.write_config(document(audit_keys, backend_pool, weighted={"primary": 1}))
    wait_until(lambda: config_version(gateway) == reloaded, "the reload")
    assert instances(gateway, WEIGHTED, 30) == {"backend-2": 30}
    view = httpx.get(url, headers=bearer(token)).json()
    assert view["file_weights"] == {"primary": 1, "canary": 0}
    assert view["weights"] == {"primary": 0, "canary": 1}

    reset = httpx.delete(url, headers=bearer(token))
    assert reset.status_code == 200 and reset.json()["override"] is None
    assert instances(gateway, WEIGHTED, 30) == {"backend-1": 30}

    wait_until(lambda: len(audit_keys.audit) == audited + 2, "two audit records")
    (authorization, changed), (_, undone) = audit_keys.audit[audited:]
    assert authorization == f"Bearer {token}"
    assert changed["action"] == undone["action"] == "canary_weights_changed"
    assert changed["target"] == "weighted"
    assert changed["detail"] == {
        "route": "weighted",
        "weights": [{"group": "primary", "weight": 0}, {"group": "canary", "weight": 1}],
        "previous": [{"group": "primary", "weight": 80}, {"group": "canary", "weight": 20}],
        "reset": False,
        "shared": False,
    }
    assert undone["detail"]["reset"] is True
    assert undone["detail"]["weights"] == [
        {"group": "primary", "weight": 1},
        {"group": "canary", "weight": 0},
    ]
    assert (
        metric_value(gateway.metrics(), "gateway_canary_weight_changes_total", source="operator")
        == 2
    )


def config_version(gateway: GatewayProcess) -> int:
    deadline = time.monotonic() + 10
    while True:
        try:
            return int(httpx.get(gateway.admin_url + "/-/config", timeout=5).json()["version"])
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
