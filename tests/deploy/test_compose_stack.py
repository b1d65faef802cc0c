"""The compose stack, for real: built, brought up with podman, walked through, brought down.

``make compose-test`` runs this module alone; ``make test`` runs it with the
rest. The walkthrough is the original app's, through the published port of
the stack (an nginx edge alternating between the two gateway replicas).
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from deploy.compose_stack import (
    IMAGE_PREFIX,
    IMAGE_TAG,
    PACKAGES,
    SERVICES,
    Stack,
    compose_stack,
    run,
    service_container,
    source_digest,
)
from support.processes import free_port

# The first run on a new machine also builds the base images (debootstrap).
pytestmark = pytest.mark.timeout(900)

T = TypeVar("T")
SERVICE1 = "service1.my-company.com"
SERVICE2 = "service2.my-company.com"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
EXPECTED_TARGETS = {
    # The gateways' metrics come from their admin listeners.
    ("gateway", "gateway-1:9901"),
    ("gateway", "gateway-2:9901"),
    ("auth", "auth:8001"),
    ("accounts-ui", "accounts-ui:8002"),
    ("fake-backend", "fake-backend-1:9001"),
    ("fake-backend", "fake-backend-2:9001"),
    ("fake-backend", "fake-backend-3:9001"),
    ("fake-backend", "fake-backend-4:9001"),
    ("fake-backend", "fake-backend-5:9001"),
    ("prometheus", "localhost:9090"),
}


def _port(variable: str) -> int:
    """A port from the environment (to look at a stack by hand), else a free one."""
    value = os.environ.get(variable)
    return int(value) if value else free_port()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with compose_stack(
        _port("GATEHOUSE_COMPOSE_TEST_PORT"),
        _port("GATEHOUSE_COMPOSE_TEST_PROMETHEUS_PORT"),
        (free_port(), free_port()),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=15.0) as http:
        yield http


@pytest.fixture(scope="module")
def user(client: httpx.Client) -> dict[str, str]:
    """A user signed up through the gateway, and its token."""
    name = f"compose-{uuid.uuid4().hex[:10]}"
    email = f"{name}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    signup = client.post("/account", json={"username": name, "password": password, "email": email})
    assert signup.status_code == 201, signup.text
    login = client.post("/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"username": name, "email": email, "token": login.json()["access_token"]}


def _poll(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """``probe()`` until it returns something, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None:
            return last
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": promql})
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _instance(
    client: httpx.Client, host: str, token: str, path: str = "/hello", **headers: str
) -> str:
    headers |= {"Host": host, "Authorization": f"Bearer {token}"}
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    instance: str = response.json()["instance"]
    return instance


def test_signup_and_login_through_the_gateway(client: httpx.Client, user: dict[str, str]) -> None:
    again = client.post(
        "/account",
        # A password auth's strength rules accept, so the answer is about the taken name.
        json={
            "username": user["username"],
            "password": f"another-{uuid.uuid4().hex}",
            "email": user["email"],
        },
    )
    assert again.status_code == 409
    wrong = client.post("/login", json={"email": user["email"], "password": "not-the-password"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert [key["alg"] for key in jwks.json()["keys"]] == ["EdDSA"]


def test_services_answer_with_a_token_only(client: httpx.Client, user: dict[str, str]) -> None:
    assert _instance(client, SERVICE1, user["token"]) in {"backend-1", "backend-2", "backend-5"}
    assert _instance(client, SERVICE2, user["token"]) in {"backend-3", "backend-4"}
    for host in (SERVICE1, SERVICE2):
        bare = client.get("/hello", headers={"Host": host})
        assert bare.status_code == 401
        assert bare.headers["www-authenticate"].startswith("Bearer")
        forged = client.get("/hello", headers={"Host": host, "Authorization": "Bearer not.a.jwt"})
        assert forged.status_code == 401


def test_accounts_page_lists_the_new_account_for_the_admin(
    stack: Stack, client: httpx.Client, user: dict[str, str]
) -> None:
    form = client.get("/accounts_page")
    assert form.status_code == 200
    assert "text/html" in form.headers["content-type"]
    with httpx.Client(base_url=stack.base_url, timeout=15.0) as browser:
        # The sign-in form's CSRF token is signed for the nonce cookie it came with.
        page = browser.get("/accounts_page")
        token = CSRF_FIELD.search(page.text)
        assert token, page.text[:500]

        def sign_in(password: str) -> httpx.Response:
            return browser.post(
                "/accounts_page/login",
                data={
                    "email": "admin@example.com",
                    "password": password,
                    "csrf_token": token.group(1),
                },
                headers={"Origin": stack.base_url},
            )

        assert sign_in("wrong-password").status_code == 401
        signed_in = sign_in(stack.admin_password)
        assert signed_in.status_code == 303, signed_in.text[:500]
        listing = browser.get("/accounts_page", params={"search": user["username"]})
        assert listing.status_code == 200
        assert user["email"] in listing.text


def test_both_gateway_replicas_share_one_cursor(
    stack: Stack, client: httpx.Client, user: dict[str, str]
) -> None:
    # The edge alternates requests between the replicas; only a cursor they
    # share makes the backends alternate exactly (two local cursors would
    # give backend-1, backend-1, backend-2, backend-2, ...). service1's canary
    # group (backend-5) takes 10% of them at random without moving the primary
    # group's cursor, so the primary's picks alone must alternate.
    seen = [_instance(client, SERVICE1, user["token"]) for _ in range(16)]
    primary = [instance for instance in seen if instance != "backend-5"]
    assert set(seen) <= {"backend-1", "backend-2", "backend-5"}, seen
    assert set(primary) == {"backend-1", "backend-2"}, seen
    assert all(a != b for a, b in itertools.pairwise(primary)), seen
    # and x-canary: 1 always reaches the canary, through either replica
    canary = {_instance(client, SERVICE1, user["token"], **{"x-canary": "1"}) for _ in range(4)}
    assert canary == {"backend-5"}

    def replicas_serving() -> set[str] | None:
        rows = _query(
            stack, 'sum by (instance) (http_requests_total{job="gateway",handler="service1"})'
        )
        instances = {row["metric"]["instance"] for row in rows if float(row["value"][1]) > 0}
        return instances if len(instances) == 2 else None

    assert _poll(replicas_serving, 60, "both gateway replicas serving service1") == {
        "gateway-1:9901",
        "gateway-2:9901",
    }
    state = _query(stack, 'gateway_cursor_state{state="redis"}')
    assert {row["metric"]["instance"] for row in state if row["value"][1] == "1"} == {
        "gateway-1:9901",
        "gateway-2:9901",
    }


def test_prometheus_scrapes_every_target_with_the_rules_loaded(stack: Stack) -> None:
    def all_up() -> set[tuple[str, str]] | None:
        response = httpx.get(f"{stack.prometheus_url}/api/v1/targets", params={"state": "active"})
        response.raise_for_status()
        targets = response.json()["data"]["activeTargets"]
        up = {(t["labels"]["job"], t["labels"]["instance"]) for t in targets if t["health"] == "up"}
        return up if up == EXPECTED_TARGETS and len(targets) == len(EXPECTED_TARGETS) else None

    assert _poll(all_up, 90, "every scrape target up") == EXPECTED_TARGETS
    rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules").json()["data"]["groups"]
    alerts = {
        rule["name"] for group in rules for rule in group["rules"] if rule["type"] == "alerting"
    }
    assert {
        "GatehouseErrorBudgetBurnFast",
        "GatehouseBackendDown",
        "GatehouseJWKSFetchFailing",
    } <= alerts


def test_images_run_as_an_unprivileged_user(stack: Stack) -> None:
    for service in SERVICES:
        inspected = run(
            [
                "podman",
                "image",
                "inspect",
                "--format",
                "{{.Config.User}} {{json .Config.Healthcheck}}",
                f"{IMAGE_PREFIX}/{service}:{IMAGE_TAG}",
            ]
        ).stdout
        assert inspected.startswith("10001:10001 "), (service, inspected)
        assert re.search(r"urlopen\('http://127\.0\.0\.1:", inspected), (service, inspected)


DIGEST = (
    "import hashlib, importlib, pathlib, sys; "
    "root = pathlib.Path(importlib.import_module(sys.argv[1]).__file__).parent; "
    "data = b''.join(p.read_bytes() for p in sorted(root.rglob('*.py'))); "
    "print(hashlib.sha256(data).hexdigest())"
)


def test_images_hold_the_code_of_the_working_tree(stack: Stack) -> None:
    # A layer cache that missed a source change would test yesterday's code.
    for package in PACKAGES:
        module = f"gatehouse_{package.replace('-', '_')}"
        image = f"{IMAGE_PREFIX}/{'gateway' if package == 'common' else package}:{IMAGE_TAG}"
        inside = run(
            ["podman", "run", "--rm", "--entrypoint", "python", image, "-c", DIGEST, module]
        ).stdout.strip()
        # The tree as built, or as it is now if someone saved a file meanwhile.
        assert inside in {stack.built_from[package], source_digest(package)}, (package, image)


def test_gateway_own_endpoints_answer_on_the_admin_listener_only(
    stack: Stack, client: httpx.Client
) -> None:
    for path in ("/-/config", "/-/metrics", "/-/readyz", "/-/healthz", "/-/dashboard"):
        assert client.get(path).status_code == 404, path
    # public_metrics is off in the stack's config: the metrics name the backends.
    assert client.get("/metrics").status_code == 404
    for replica, url in stack.admin_urls.items():
        assert httpx.get(f"{url}/-/readyz", timeout=5).status_code == 200, replica
        metrics = httpx.get(f"{url}/-/metrics", timeout=5)
        assert "gateway_cursor_state" in metrics.text, replica


def test_fake_backend_faults_cannot_be_reached_through_the_gateway(
    client: httpx.Client, user: dict[str, str]
) -> None:
    # Any signed-up user could switch a backend's health check off before.
    headers = {"Host": SERVICE1, "Authorization": f"Bearer {user['token']}"}
    calls = [
        ("PUT", "/__backend/faults"),
        ("GET", "/__backend/faults"),
        ("POST", "/__backend/reset"),
        ("GET", "/__backend/bytes/1000000"),
    ]
    for method, path in calls:
        body = {"healthy": False, "error_rate": 1} if method == "PUT" else None
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
    # both primary backends still answer (service1's canary, backend-5, takes 10%)
    seen = {_instance(client, SERVICE1, user["token"]) for _ in range(8)}
    assert {"backend-1", "backend-2"} <= seen <= {"backend-1", "backend-2", "backend-5"}, seen


def test_redis_wants_a_user_and_keeps_each_to_its_keys(stack: Stack) -> None:
    redis = service_container("redis")

    def cli(*args: str) -> str:
        # An error reply may or may not set redis-cli's exit code (by version).
        command = ["podman", "exec", redis, "redis-cli", "--no-auth-warning", *args]
        result = run(command, check=False)
        return (result.stdout + result.stderr).strip()

    assert "NOAUTH" in cli("set", "gatehouse:gateway:drain:service1:backend-1", "{}")
    auth_password = (stack.secrets_dir / "redis_auth_password").read_text().strip()
    as_auth = ("--user", "auth", "--pass", auth_password)
    assert "NOPERM" in cli(*as_auth, "set", "gatehouse:gateway:drain:service1:backend-1", "{}")
    assert "NOPERM" in cli(*as_auth, "flushall")
    assert cli(*as_auth, "ping") == "PONG"


def test_proxies_in_front_of_auth_have_the_addresses_auth_trusts(stack: Stack) -> None:
    expected = {
        "edge": "10.213.7.221",
        "gateway-1": "10.213.7.201",
        "gateway-2": "10.213.7.202",
        "accounts-ui": "10.213.7.211",
    }
    for service, address in expected.items():
        command = ["podman", "inspect", "--format", "{{json .NetworkSettings.Networks}}"]
        inspected = run([*command, service_container(service)]).stdout
        assert f'"IPAddress":"{address}"' in inspected.replace(" ", ""), (service, inspected)
