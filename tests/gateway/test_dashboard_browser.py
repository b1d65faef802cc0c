"""The operator dashboard in headless Chromium, against a real auth service.

Playwright drives Debian's chromium (``GATEHOUSE_CHROMIUM`` overrides the
path; never ``playwright install``) with the sync API in plain test functions.
The admin signs in on the page itself: the page posts to ``/login`` through
the gateway, which routes it to a real auth service whose admin comes from
``GATEHOUSE_ADMIN_EMAIL``. Route ``app`` has two backends of the session's
pool, checked every 0.3 s; their ``/healthz`` is switched off and on through
the fake backend's fault endpoint. A screenshot is kept under tests/artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gateway.operator_support import admin_state, backend_of, load
from playwright.sync_api import Browser, Locator, Page, expect
from support.auth import ADMIN_EMAIL, ADMIN_PASSWORD, auth_env, auth_process
from support.browser import Watched, launch_chromium
from support.databases import temporary_database
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route
from support.processes import ARTIFACTS, ServiceProcess

USER_EMAIL = "viewer-ops@example.com"
USER_PASSWORD = "viewer-password-42"


@pytest.fixture(scope="module")
def stack(
    module_launcher: Launcher,
    backend_pool: list[ServiceProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway in front of a real auth service and two backends; yields the gateway."""
    data_dir = tmp_path_factory.mktemp("operator-auth")
    with temporary_database("operator_ui") as database_url:
        env = auth_env(data_dir, database_url=database_url, redis_prefix=None)
        auth = auth_process(env, name="auth-for-dashboard")
        document = {
            # the gateway may start first: let it refetch the keys soon
            "auth": {
                "jwks_url": f"{auth.url}/.well-known/jwks.json",
                "jwks_min_refresh_interval": 0.5,
            },
            "cursor": {"store": "local"},
            "routes": [
                {
                    "name": "auth",
                    "path_prefix": ["/account", "/login", "/.well-known/"],
                    "backends": [{"url": auth.url}],
                    # shown in the dashboard's rate limit panel; never refuses here
                    "rate_limits": [
                        {"name": "per-client", "key": {"by": "client_address"}, "rate": 1000}
                    ],
                },
                gateway_route(
                    backend_pool[:2],
                    health_check={
                        "interval": 0.3,
                        "healthy_threshold": 1,
                        "unhealthy_threshold": 1,
                    },
                ),
            ],
        }
        with ThreadPoolExecutor(2) as pool:
            started = [pool.submit(auth.start), pool.submit(module_launcher.gateway, document)]
            gateway = started[1].result()
            started[0].result()
        try:
            response = httpx.post(
                gateway.url + "/account",
                json={"username": "viewer-ops", "password": USER_PASSWORD, "email": USER_EMAIL},
                timeout=15,
            )
            assert response.status_code == 201, response.text
            yield gateway
        finally:
            auth.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as launched:
        yield launched


def test_the_dashboard_is_served_by_the_gateway_under_a_strict_csp(
    stack: GatewayProcess,
) -> None:
    with httpx.Client(base_url=stack.admin_url, timeout=10) as client:
        page = client.get("/-/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        html = page.text
        assert "<style" not in html and " style=" not in html
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/-/dashboard/dashboard.js" defer>'
        ]
        assert "http://" not in html and "https://" not in html  # nothing from elsewhere
        for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
            response = client.get(f"/-/dashboard/{asset}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(kind)
            assert response.headers["content-security-policy"] == csp
        for hostile in ("nope.js", "..%2F..%2Fadmin.py", "%2e%2e/%2e%2e/admin.py", "x" * 2000):
            response = client.get(f"/-/dashboard/{hostile}")
            assert response.status_code == 404
            assert response.json()["error"] == "not_found"


def sign_in(page: Page, email: str, password: str) -> None:
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def row(page: Page, backend: ServiceProcess) -> Locator:
    return page.locator(f'tr[data-route="app"][data-backend="127.0.0.1:{backend.port}"]')


@pytest.mark.browser
def test_the_dashboard_shows_a_backend_go_down_and_back_and_drains_by_button(
    stack: GatewayProcess, backends: list[ServiceProcess], browser: Browser
) -> None:
    first, second = backends[0], backends[1]
    for backend in (first, second):  # a steady trickle of traffic
        httpx.put(backend.url + "/__backend/faults", json={"latency_ms": 40})
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(10_000)
    watched = Watched(context.new_page())
    page = watched.page
    try:
        page.goto(stack.admin_url + "/-/dashboard")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

        sign_in(page, ADMIN_EMAIL, "not-the-password")
        expect(page.locator("#signin-error")).to_have_text("wrong email or password")
        sign_in(page, USER_EMAIL, USER_PASSWORD)
        expect(page.locator("#signin-error")).to_have_text("this account is not an admin")
        assert page.evaluate("sessionStorage.getItem('gatehouse.admin.token')") is None
        # the browser logs those 401/403 answers as errors, some only after the
        # message is shown: let the refused sign-ins settle, then forget them
        page.wait_for_load_state("networkidle")
        watched.errors.clear()

        sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        expect(page.locator("#board")).to_be_visible()
        expect(page.locator("#who")).to_have_text(f"signed in as {ADMIN_EMAIL}")
        token = page.evaluate("sessionStorage.getItem('gatehouse.admin.token')")
        assert isinstance(token, str) and token.count(".") == 2
        expect(row(page, first)).to_have_attribute("data-status", "up")
        expect(row(page, second)).to_have_attribute("data-status", "up")
        # the rate limit panel: the sign-ins above went through the limited auth route
        expect(page.locator("#ratelimit-state")).to_have_text("this process only (no Redis)")
        limit = page.locator('tr[data-route="auth"][data-limit="per-client"] td')
        expect(limit.nth(3)).to_have_text("1000/second")
        expect(limit.nth(5)).to_have_text(re.compile(r"^[1-9]"))  # allowed
        # the stylesheet applied under the CSP
        dot = row(page, first).locator(".dot")
        assert dot.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(31, 157, 85)"

        with load([stack], HOST, threads=2) as traffic:
            expect(row(page, first).locator("td.rps")).not_to_have_text("0.0")

            httpx.put(second.url + "/__backend/faults", json={"healthy": False})
            expect(row(page, second)).to_have_attribute("data-status", "down")
            expect(row(page, second).locator("td.status")).to_have_text("down")
            red = row(page, second).locator(".dot")
            assert red.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(220, 38, 38)"
            expect(page.locator("section.route[data-route='app'] h2")).to_contain_text(
                "1/2 available · 0 WebSockets"
            )
            httpx.put(second.url + "/__backend/faults", json={"healthy": True})
            expect(row(page, second)).to_have_attribute("data-status", "up")

            row(page, first).get_by_role("button", name="Drain").click()
            expect(row(page, first)).to_have_attribute("data-status", "drained")
            expect(row(page, first).locator("td.status")).to_have_text(f"drained by {ADMIN_EMAIL}")
            expect(row(page, first).get_by_role("button")).to_have_text("Restore")
            assert backend_of(admin_state(stack, token), "app", first)["drained"] is True
            charts = row(page, first).locator("svg.chart")
            assert charts.count() == 2
            assert int(charts.first.get_attribute("data-points") or 0) > 0
            assert charts.first.locator("polyline").get_attribute("points")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "operator_dashboard.png"), full_page=True)

            row(page, first).get_by_role("button", name="Restore").click()
            expect(row(page, first)).to_have_attribute("data-status", "up")
            assert backend_of(admin_state(stack, token), "app", first)["drained"] is False
        assert traffic.errors == []
        assert {o.status for o in traffic.outcomes} == {200}

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('gatehouse.admin.token')") is None
        assert watched.errors == []
    finally:
        context.close()
