"""The accounts page in headless Chromium (Debian's, via Playwright), directly and via the gateway.

Playwright never downloads a browser here: it launches the system chromium
(``GATEHOUSE_CHROMIUM`` overrides the path), which ``make test`` installs.
The sync API runs in plain test functions, outside any asyncio loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest
from accounts_ui.conftest import ActionStack
from accounts_ui.forms import PASSWORD, new_account
from accounts_ui.pages import account, render_listing
from accounts_ui.stack import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    HOSTILE,
    HOSTILE_EMAIL,
    HOSTILE_ROW_USERNAME,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    Stack,
    admin_token,
)
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    expect,
)
from support.browser import Watched, launch_chromium
from support.processes import ARTIFACTS

pytestmark = pytest.mark.browser
# Generous waits: CI shares two cores with every other suite. A step that
# really fails still fails, only later.
TIMEOUT_MS = 20_000
NEW_PASSWORD = "a brand new passphrase 77"
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as launched:
        yield launched


def new_context(browser: Browser, width: int, height: int) -> BrowserContext:
    """A fresh context: no cookies, its own viewport, the generous timeout."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    """A fresh browser context and page for one test."""
    context = new_context(browser, 1200, 900)
    yield Watched(context.new_page())
    context.close()


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts_page")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def usernames(page: Page) -> list[str]:
    return page.locator("#accounts td.username").all_inner_texts()


def test_admin_signs_in_searches_pages_and_signs_out(stack: Stack, watched: Watched) -> None:
    page = watched.page
    sign_in(page, stack.ui.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.locator("#accounts")).to_be_visible()
    expect(page.locator("#total")).to_have_text(f"{stack.total} total")
    assert usernames(page)[:3] == [HOSTILE_ROW_USERNAME, stack.seeded[-1], stack.seeded[-2]]
    assert len(usernames(page)) == 25  # the default page size
    # The stylesheet loaded under the strict CSP (its background colour applies).
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(245, 246, 248)"

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["gatehouse_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts

    page.get_by_label("Search").fill("seed-1")
    page.get_by_label("Per page").select_option("10")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#total")).to_have_text("10 total")
    assert sorted(usernames(page)) == [f"seed-{i}" for i in range(10, 20)]

    page.get_by_label("Search").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#range")).to_contain_text(f"of {stack.total} · page 1 of 3")
    first_page = usernames(page)
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#range")).to_contain_text(f"11\u201320 of {stack.total} · page 2 of 3")
    second_page = usernames(page)
    assert len(second_page) == 10 and not set(first_page) & set(second_page)
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#range")).to_contain_text("page 3 of 3")
    assert usernames(page)[-1] == "admin"  # the oldest account comes last
    expect(page.get_by_role("link", name="Next →")).to_have_count(0)
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator("#range")).to_contain_text("page 2 of 3")
    assert usernames(page) == second_page

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert "gatehouse_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{stack.ui.url}/accounts_page")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert watched.dialogs == [] and watched.errors == []


def test_hostile_values_render_as_inert_text(stack: Stack, watched: Watched) -> None:
    page = watched.page
    sign_in(page, stack.ui.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.locator("#accounts")).to_be_visible()

    page.get_by_label("Search").fill(HOSTILE)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#total")).to_have_text("1 total")
    expect(page.get_by_role("cell", name=HOSTILE_EMAIL)).to_be_visible()
    expect(page.get_by_role("cell", name=HOSTILE_ROW_USERNAME, exact=True)).to_be_visible()
    assert page.locator("main script, main img").count() == 0
    expect(page.get_by_label("Search")).to_have_value(HOSTILE)

    page.get_by_label("Search").fill(HOSTILE + "-nothing")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#empty")).to_contain_text(f"No accounts match “{HOSTILE}-nothing”.")
    assert page.locator("main script, main img").count() == 0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.get_by_label("Search").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#accounts")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "accounts_page.png"), full_page=True)
    assert (ARTIFACTS / "accounts_page.png").stat().st_size > 10_000
    assert watched.dialogs == []
    assert watched.errors == []  # no CSP violation either


def test_a_hostile_username_renders_as_text_in_the_browser(watched: Watched) -> None:
    """The page's own rendering, loaded without the CSP header.

    The stack's hostile row (written straight into the database, since auth
    refuses such names at signup) is checked above under the real CSP; here
    the escaping alone has to keep the script inert.
    """
    page = watched.page
    page.set_content(render_listing([account(HOSTILE, "someone@example.com")], search=HOSTILE))
    expect(page.get_by_role("cell", name=HOSTILE, exact=True)).to_be_visible()
    expect(page.get_by_label("Search")).to_have_value(HOSTILE)
    assert page.locator("main script").count() == 0
    assert watched.dialogs == []


def test_the_page_fits_a_phone_screen(stack: Stack, browser: Browser) -> None:
    context = new_context(browser, 375, 740)
    try:
        page = context.new_page()
        sign_in(page, stack.ui.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        expect(page.locator("#accounts")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(ARTIFACTS / "accounts_page_phone.png"))
    finally:
        context.close()


def test_a_non_admin_sees_a_403_page(stack: Stack, watched: Watched) -> None:
    page = watched.page
    sign_in(page, stack.ui.url, VIEWER_EMAIL, VIEWER_PASSWORD)
    expect(page.get_by_role("heading", name="Administrators only")).to_be_visible()
    response = page.reload()
    assert response is not None and response.status == 403
    expect(page.locator("#accounts")).to_have_count(0)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_wrong_password_stays_on_the_form(stack: Stack, watched: Watched) -> None:
    page = watched.page
    sign_in(page, stack.ui.url, ADMIN_EMAIL, "wrong-password")
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    expect(page.get_by_label("Email")).to_have_value(ADMIN_EMAIL)
    expect(page.get_by_label("Password")).to_have_value("")


def test_the_page_works_through_the_gateway(stack: Stack, watched: Watched) -> None:
    page = watched.page
    gateway = stack.gateway
    sign_in(page, gateway.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.locator("#accounts")).to_be_visible()
    assert page.url == f"{gateway.url}/accounts_page"
    expect(page.locator("#total")).to_have_text(f"{stack.total} total")
    page.get_by_label("Search").fill("seed-2")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#total")).to_have_text("6 total")
    assert page.url.startswith(f"{gateway.url}/accounts_page?")
    page.screenshot(path=str(ARTIFACTS / "accounts_page_via_gateway.png"), full_page=True)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert page.url.startswith(f"{gateway.url}/accounts_page")
    assert watched.dialogs == [] and watched.errors == []


# The page acting on accounts (auth and the page over a database of their own).


def row_of(page: Page, base: str, username: str) -> Locator:
    """The account's row, found with the page's own search."""
    page.goto(f"{base}/accounts_page?search={username}")
    row = page.locator("#accounts tbody tr", has=page.locator("td.username", has_text=username))
    expect(row).to_have_count(1)
    return row


def confirm(page: Page, question: str, button: str) -> None:
    """The confirmation step: a page of its own, then its one button."""
    expect(page.get_by_role("heading", name=question)).to_be_visible()
    page.get_by_role("button", name=button).click()


def test_every_admin_action_in_the_browser(action_stack: ActionStack, watched: Watched) -> None:
    page, base = watched.page, action_stack.ui.url
    account = new_account(action_stack)
    name = account["username"]
    sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.locator("#accounts")).to_be_visible()

    # Disable: cancelled first (nothing happens), then confirmed.
    row_of(page, base, name).get_by_role("button", name="Disable").click()
    expect(page.locator("#confirm-account")).to_contain_text(account["email"])
    page.get_by_role("link", name="Cancel").click()
    expect(row_of(page, base, name).locator("td.status")).to_have_text("Active")
    row_of(page, base, name).get_by_role("button", name="Disable").click()
    confirm(page, "Disable the account?", "Yes, disable")
    expect(page.locator("#notice")).to_contain_text("The account is disabled")
    expect(row_of(page, base, name).locator("td.status")).to_have_text("Disabled")
    # Enable: no confirmation needed.
    row_of(page, base, name).get_by_role("button", name="Enable").click()
    expect(page.locator("#notice")).to_contain_text("enabled again")
    expect(row_of(page, base, name).locator("td.status")).to_have_text("Active")

    # Change role.
    row = row_of(page, base, name)
    row.get_by_label(f"Role of {name}").select_option("admin")
    row.get_by_role("button", name="Change role").click()
    expect(page.locator("#confirm-role")).to_have_text("admin")
    confirm(page, "Change the role?", "Yes, change role")
    expect(page.locator("#notice")).to_contain_text("The role is changed")
    expect(row_of(page, base, name).locator(".role")).to_have_text("admin")

    # Sign out everywhere.
    row_of(page, base, name).get_by_role("button", name="Sign out everywhere").click()
    confirm(page, "Sign out everywhere?", "Yes, sign out everywhere")
    expect(page.locator("#notice")).to_contain_text("signed out everywhere")

    # Lift lockout (there is none: said so).
    row_of(page, base, name).get_by_role("button", name="Lift lockout").click()
    expect(page.locator("#notice")).to_contain_text("had no sign-in lockout")

    # A reset link, shown once; its owner uses it in a browser of their own.
    row_of(page, base, name).get_by_role("button", name="Reset link").click()
    confirm(page, "Issue a password-reset link?", "Yes, issue link")
    link = page.locator("#reset-url").input_value()
    assert link.startswith(f"{base}/accounts_page/password-reset?token=")
    owner = page.context.browser.new_context() if page.context.browser else None
    assert owner is not None
    try:
        their = owner.new_page()
        their.goto(link)
        their.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        their.get_by_label("New password again").fill(NEW_PASSWORD)
        their.get_by_role("button", name="Set password").click()
        expect(their.get_by_role("status")).to_have_text(
            "Your new password is set. Sign in with it."
        )
        sign_in(their, base, account["email"], NEW_PASSWORD)
        expect(their.locator("#accounts")).to_be_visible()  # an admin now
    finally:
        owner.close()

    # Every action is in the audit view, filtered by the account.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Target").fill(account["email"])
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit")).to_be_visible()
    actions = set(page.locator("#audit td.action").all_inner_texts())
    assert {
        "account_disabled",
        "account_enabled",
        "role_changed",
        "signed_out_everywhere",
        "password_reset_issued",
        "password_reset_used",
    } <= actions, actions
    page.get_by_label("Action").select_option("role_changed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit td.action")).to_have_text(["role_changed"])
    assert watched.dialogs == [] and watched.errors == []


def test_a_user_changes_their_own_password_in_the_browser(
    action_stack: ActionStack, watched: Watched
) -> None:
    page, base = watched.page, action_stack.ui.url
    account = new_account(action_stack)
    sign_in(page, base, account["email"], PASSWORD)
    expect(page.get_by_role("heading", name="Administrators only")).to_be_visible()
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("Your current password is not right.")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#notice")).to_contain_text("Your password is changed")
    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in(page, base, account["email"], NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Administrators only")).to_be_visible()
    # the 403 answers (not an admin, a wrong current password) are the only errors
    assert watched.dialogs == []
    assert all("status of 403" in error for error in watched.errors), watched.errors


def test_hostile_audit_values_render_as_inert_text(
    action_stack: ActionStack, watched: Watched
) -> None:
    page, base = watched.page, action_stack.ui.url
    login = httpx.post(
        action_stack.auth.url + "/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    ).json()
    recorded = httpx.post(
        action_stack.auth.url + "/audit",
        json={"action": "canary_weights_changed", "target": HOSTILE, "detail": {"x": HOSTILE}},
        headers={"Authorization": f"Bearer {login['access_token']}"},
        timeout=30,
    )
    assert recorded.status_code == 201, recorded.text
    sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"{base}/accounts_page/audit?action=canary_weights_changed")
    expect(page.locator("#audit td.target").first).to_have_text(HOSTILE)
    expect(page.locator("#audit td.detail").first).to_contain_text(HOSTILE)
    assert page.locator("main script, main img").count() == 0
    assert watched.dialogs == [] and watched.errors == []


def test_the_session_is_renewed_when_the_access_token_expires(
    action_stack: ActionStack, watched: Watched
) -> None:
    """The access cookie is swapped for an expired token: the next page renews it with
    the refresh cookie, and both cookies stay HttpOnly and out of the script's reach."""
    page, base = watched.page, action_stack.ui.url
    sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.locator("#accounts")).to_be_visible()
    before = {c["name"]: c for c in page.context.cookies()}
    expired = admin_token(action_stack.keys_dir, expires_in=-120)
    page.context.add_cookies([{**before["gatehouse_session"], "value": expired}])
    page.reload()
    expect(page.locator("#accounts")).to_be_visible()
    after = {c["name"]: c for c in page.context.cookies()}
    assert after["gatehouse_session"]["value"] not in (
        expired,
        before["gatehouse_session"]["value"],
    )
    assert after["gatehouse_refresh"]["value"] != before["gatehouse_refresh"]["value"]
    assert (
        after["gatehouse_refresh"]["httpOnly"]
        and after["gatehouse_refresh"]["sameSite"] == "Strict"
    )
    assert page.evaluate("document.cookie") == ""
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert not {"gatehouse_session", "gatehouse_refresh"} & {
        c["name"] for c in page.context.cookies()
    }


def sign_in_with_code(page: Page, base: str, email: str, password: str, code: str) -> None:
    """Sign in where auth asks for a second factor: the form comes back asking for it."""
    sign_in(page, base, email, password)
    expect(page.get_by_label("Authenticator code")).to_be_visible()
    page.get_by_label("Password").fill(password)
    page.get_by_label("Authenticator code").fill(code)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_enrols_signs_in_with_a_code_and_a_recovery_code_and_turns_it_off(
    totp_stack: ActionStack, watched: Watched
) -> None:
    """Where admins must have a second factor: sent to enrol, then every way of signing in."""
    page, base = watched.page, totp_stack.ui.url
    sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Turn on two-factor sign-in first")).to_be_visible()
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    expect(page.locator("#totp-state")).to_contain_text("Two-factor sign-in is off")
    page.get_by_role("button", name="Set up two-factor sign-in").click()

    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("img", name="QR code of the secret").locator("svg")).to_be_visible()
    secret = page.get_by_label("Secret", exact=True).input_value()
    expect(page.get_by_label("Or as a link (otpauth)")).to_have_value(
        re.compile(rf"^otpauth://totp/.*secret={secret}")
    )
    page.get_by_label("Code from your app").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong or was already used")
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10

    page.get_by_role("button", name="Sign out", exact=True).click()
    following = pyotp.TOTP(secret).at(time.time() + 30)  # the current step is spent
    sign_in_with_code(page, base, ADMIN_EMAIL, ADMIN_PASSWORD, following)
    expect(page.locator("#accounts")).to_be_visible()

    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in_with_code(page, base, ADMIN_EMAIL, ADMIN_PASSWORD, codes[0])
    expect(page.locator("#accounts")).to_be_visible()

    page.get_by_role("link", name="Two-factor").click()
    expect(page.locator("#totp-state")).to_contain_text("Two-factor sign-in is on")
    page.get_by_label("Code from your app, or a recovery code").fill(codes[0])  # spent
    page.get_by_role("button", name="Turn off two-factor sign-in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong or was already used")
    page.get_by_label("Code from your app, or a recovery code").fill(codes[1])
    page.get_by_role("button", name="Turn off two-factor sign-in").click()
    expect(page.locator("#notice")).to_contain_text("Two-factor sign-in is off")
    page.goto(f"{base}/accounts_page")
    expect(page.get_by_role("heading", name="Turn on two-factor sign-in first")).to_be_visible()
    # the refusals the flow provokes (a code asked for, wrong codes, enrolment due) only
    assert watched.dialogs == []
    assert all(re.search(r"status of 40[013]", error) for error in watched.errors), watched.errors
