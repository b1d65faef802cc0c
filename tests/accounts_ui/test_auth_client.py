"""The page when the auth service misbehaves: a real fake backend stands in for it.

The fake backend answers every path with its echo (valid JSON, wrong shape)
and injects statuses and delays on request, which is exactly an auth service
gone wrong: the page must answer with a clear page every time, never a
traceback and never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from accounts_ui.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, sign_in
from support.backends import fake_backend
from support.processes import ServiceProcess

AUTH_TIMEOUT = 1.0  # the spare page's (see conftest)


@pytest.fixture(scope="module")
def stand_in(stack: Stack) -> Iterator[ServiceProcess]:
    """A fake backend on the spare page's auth port for this module, closed again after."""
    with fake_backend(port=stack.spare_port) as process:
        yield process


@pytest.fixture
def ui(stack: Stack, stand_in: ServiceProcess) -> ServiceProcess:
    return stack.ui_spare


@pytest.fixture
def faults(stand_in: ServiceProcess) -> Iterator[httpx.Client]:
    """Change the stand-in's faults for one test; they are reset afterwards."""
    with httpx.Client(base_url=f"{stand_in.url}/__backend") as client:
        yield client
        client.post("/reset").raise_for_status()


def _page(ui: ServiceProcess) -> httpx.Response:
    return httpx.get(f"{ui.url}/accounts_page", cookies={"gatehouse_session": "a.b.c"}, timeout=10)


def test_a_listing_of_the_wrong_shape_gives_a_502_page(ui: ServiceProcess) -> None:
    response = _page(ui)
    assert response.status_code == 502
    assert "The auth service answered in an unexpected way." in response.text


def test_a_login_answer_of_the_wrong_shape_gives_a_502_page(ui: ServiceProcess) -> None:
    with httpx.Client(base_url=ui.url) as client:
        response = sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 502
    assert "gatehouse_session" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("status", "page_status", "message"),
    [
        (500, 503, "The auth service is failing right now."),
        (502, 503, "The auth service is failing right now."),
        (503, 503, "The auth service is failing right now."),
        (404, 502, "The auth service refused the listing unexpectedly."),
        (418, 502, "The auth service refused the listing unexpectedly."),
    ],
)
def test_an_error_status_from_auth_gives_a_clear_page(
    ui: ServiceProcess, faults: httpx.Client, status: int, page_status: int, message: str
) -> None:
    faults.put("/faults", json={"error_rate": 1, "error_status": status}).raise_for_status()
    response = _page(ui)
    assert response.status_code == page_status
    assert message in response.text


def test_a_slow_auth_service_gives_a_503_page_in_time(
    ui: ServiceProcess, faults: httpx.Client
) -> None:
    faults.put("/faults", json={"latency_ms": AUTH_TIMEOUT * 1000 * 3}).raise_for_status()
    response = _page(ui)  # the client's own timeout (10 s) is the functional bound
    assert response.status_code == 503
    assert "The auth service did not answer in time." in response.text


def test_a_throttled_sign_in_says_when_to_retry(ui: ServiceProcess, faults: httpx.Client) -> None:
    faults.put("/faults", json={"error_rate": 1, "error_status": 429}).raise_for_status()
    with httpx.Client(base_url=ui.url) as client:
        response = sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"  # none sent: the page assumes a minute
    assert "Too many sign-in attempts. Try again in 60 seconds." in response.text


def test_a_sign_in_auth_refuses_as_invalid_is_explained(
    ui: ServiceProcess, faults: httpx.Client
) -> None:
    faults.put("/faults", json={"error_rate": 1, "error_status": 422}).raise_for_status()
    with httpx.Client(base_url=ui.url) as client:
        response = sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 400
    assert "That does not look like an email address." in response.text


def test_a_two_factor_answer_of_the_wrong_shape_gives_a_502_page(ui: ServiceProcess) -> None:
    response = httpx.get(
        f"{ui.url}/accounts_page/two-factor", cookies={"gatehouse_session": "a.b.c"}, timeout=10
    )
    assert response.status_code == 502
    assert "The auth service answered in an unexpected way." in response.text
