"""The dashboard's groups and weights in headless Chromium: shown, changed, reset.

The admin signs in with a token from the test's JWKS ("Use a token
instead"), sees the route's groups with their weights, sets new weights with
the inputs and the Save button, and resets them; the running gateway routes
by what the page set.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from gateway.operator_support import ADMIN, bearer
from playwright.sync_api import Locator, Page, expect
from support.browser import Watched, launch_chromium
from support.gateway import GatewayProcess, Launcher, gateway_route
from support.jwks import KeyServer
from support.processes import ServiceProcess

HOST = "weighted.test"


def served_by(gateway: GatewayProcess, count: int) -> Counter[str]:
    with gateway.client(headers={"Host": HOST}) as client:
        return Counter(client.get(f"/{n}").headers["x-backend-instance"] for n in range(count))


def weight_input(page: Page, group: str) -> Locator:
    return page.locator(f'section.route[data-route="weighted"] label[data-group="{group}"] input')


@pytest.mark.browser
def test_an_admin_sees_and_changes_a_routes_weights_on_the_dashboard(
    launcher: Launcher, keys: KeyServer, backend_pool: list[ServiceProcess]
) -> None:
    route = gateway_route(
        backend_pool[:1],
        name="weighted",
        hosts=[HOST],
        groups=[{"name": "canary", "backends": [{"url": backend_pool[1].url}]}],
        split={"weights": {"primary": 90, "canary": 10}},
    )
    env = {"GATEHOUSE_GATEWAY_OPERATOR_AUDIT": "false"}
    gateway = launcher.gateway({"auth": {"jwks_url": keys.url}, "routes": [route]}, env=env)
    token = keys.token(roles=["admin"], email="ops@example.com")
    with launch_chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        context.set_default_timeout(10_000)
        watched = Watched(context.new_page())
        page = watched.page
        try:
            page.goto(gateway.admin_url + "/-/dashboard")
            page.get_by_text("Use a token instead").click()
            page.locator("#token").fill(token)
            page.get_by_role("button", name="Use token").click()
            panel = page.locator('section.route[data-route="weighted"] div.split')
            expect(panel).to_be_visible()
            expect(weight_input(page, "primary")).to_have_value("90")
            expect(weight_input(page, "canary")).to_have_value("10")
            expect(panel.locator(".split-state")).to_have_text("the config's weights")
            expect(panel.locator('label[data-group="canary"] .share')).to_contain_text("10.0%")
            expect(page.locator("#weights-state")).to_contain_text("this process only")

            # a bad value is refused on the page, nothing is sent
            weight_input(page, "canary").fill("-4")
            panel.get_by_role("button", name="Save weights").click()
            expect(panel.locator(".split-error")).to_have_text(
                "weights are whole numbers, 0 or more"
            )
            # all zero: the API refuses, the page says so
            weight_input(page, "primary").fill("0")
            weight_input(page, "canary").fill("0")
            panel.get_by_role("button", name="Save weights").click()
            expect(panel.locator(".split-error")).to_contain_text("422")
            watched.errors.clear()  # the browser logs the refused request

            weight_input(page, "primary").fill("0")
            weight_input(page, "canary").fill("5")
            panel.get_by_role("button", name="Save weights").click()
            expect(panel.locator(".split-state")).to_contain_text("set at run time by ops@")
            expect(panel.locator(".split-error")).to_have_text("")
            assert served_by(gateway, 20) == {"backend-2": 20}
            view = httpx.get(
                f"{gateway.admin_url}{ADMIN}/routes/weighted/weights", headers=bearer(token)
            ).json()
            assert view["weights"] == {"primary": 0, "canary": 5}

            panel.get_by_role("button", name="Back to the config's").click()
            expect(panel.locator(".split-state")).to_have_text("the config's weights")
            expect(weight_input(page, "canary")).to_have_value("10")
            assert served_by(gateway, 40)["backend-1"] > 0
            assert watched.errors == []
        finally:
            context.close()
