"""The user journey under load: ``make loadtest USERS=20 DURATION=1m [TARGET=http://...]``.

Everything goes through the gateway, as a client of the product would:

- ``JourneyUser`` signs up (``POST /account``), logs in (``POST /login``), then
  calls service1 and service2 with its token (``Host`` header routing, as in
  the original walkthrough) and checks that a backend answered.
- ``AdminUser`` (exactly one) signs in to the accounts page through its form
  (CSRF token and all) as the admin, then keeps viewing the accounts table.

The admin's credentials come from ``GATEHOUSE_ADMIN_EMAIL`` and
``GATEHOUSE_ADMIN_PASSWORD``, or from what ``make demo`` keeps in
``.data/admin-password``. Any failed request fails the run: the process exits
non-zero and the summary says what failed.

A sign-up and a login each cost a bcrypt hash (cost 12, about a quarter
second of CPU on the auth service), and the auth service limits logins to
300 per client address per minute, so a journey of many hundreds of users
per minute needs ``GATEHOUSE_AUTH_RATE_LIMIT_PER_CLIENT=0`` and
``GATEHOUSE_AUTH_SIGNUP_RATE_LIMIT_PER_CLIENT=0`` (every user signs up) on the auth
service it runs against.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from pathlib import Path

from locust import HttpUser, between, events, task
from locust.env import Environment

logger = logging.getLogger(__name__)

SERVICE1_HOST = os.environ.get("GATEHOUSE_LOADTEST_SERVICE1", "service1.my-company.com")
SERVICE2_HOST = os.environ.get("GATEHOUSE_LOADTEST_SERVICE2", "service2.my-company.com")
ADMIN_PASSWORD_FILE = Path(__file__).resolve().parents[1] / ".data" / "admin-password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PERCENTILES = (0.5, 0.9, 0.95, 0.99, 0.999)


def admin_credentials() -> tuple[str, str]:
    email = os.environ.get("GATEHOUSE_ADMIN_EMAIL", "admin@example.com")
    password = os.environ.get("GATEHOUSE_ADMIN_PASSWORD")
    if not password and ADMIN_PASSWORD_FILE.exists():
        password = ADMIN_PASSWORD_FILE.read_text().strip()
    if not password:
        raise RuntimeError(
            "set GATEHOUSE_ADMIN_PASSWORD (make demo keeps it in .data/admin-password)"
        )
    return email, password


class JourneyUser(HttpUser):
    """A new user: sign up, log in, then use both services with the token."""

    weight = 10
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        name = f"load-{uuid.uuid4().hex[:12]}"
        self.email = f"{name}@loadtest.example.com"
        self.password = f"pw-{uuid.uuid4().hex}"
        with self.client.post(
            "/account",
            json={"username": name, "password": self.password, "email": self.email},
            name="POST /account (sign up)",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"sign-up answered {response.status_code}: {response.text[:200]}")
        self.token = ""
        self.token_renew_at = 0.0
        self.log_in()

    def log_in(self) -> None:
        with self.client.post(
            "/login",
            json={"email": self.email, "password": self.password},
            name="POST /login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login answered {response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            self.token = body.get("access_token", "")
            # log in again a minute before the token runs out, as a real client would
            self.token_renew_at = time.monotonic() + float(body.get("expires_in", 900)) - 60
            if not self.token:
                response.failure("login answered without an access_token")

    def call_service(self, host: str, label: str) -> None:
        if not self.token or time.monotonic() >= self.token_renew_at:
            self.log_in()
            return
        with self.client.get(
            f"/journey/{uuid.uuid4().hex[:8]}",
            headers={"Host": host, "Authorization": f"Bearer {self.token}"},
            name=f"GET {label} (with token)",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{label} answered {response.status_code}: {response.text[:200]}")
            elif "instance" not in response.text:
                response.failure(f"{label} answered 200 without a backend's echo")

    @task(5)
    def service1(self) -> None:
        self.call_service(SERVICE1_HOST, "service1")

    @task(5)
    def service2(self) -> None:
        self.call_service(SERVICE2_HOST, "service2")


class AdminUser(HttpUser):
    """The admin: signs in on the accounts page through its form, then views the table.

    A sign-in that fails counts once and is tried again on the next turn, so
    one refused sign-in is not reported again as every later page view.
    """

    fixed_count = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.signed_in = False
        self.sign_in()

    def sign_in(self) -> None:
        email, password = admin_credentials()
        with self.client.get(
            "/accounts_page", name="GET /accounts_page (sign-in form)", catch_response=True
        ) as form:
            match = _CSRF.search(form.text)
            if form.status_code != 200 or match is None:
                form.failure(f"no sign-in form: {form.status_code}")
                return
        with self.client.post(
            "/accounts_page/login",
            data={"email": email, "password": password, "csrf_token": match.group(1)},
            name="POST /accounts_page/login",
            catch_response=True,
        ) as response:
            if 'id="accounts"' in response.text:
                self.signed_in = True
            else:
                response.failure(f"admin sign-in did not lead to the table: {response.status_code}")

    @task
    def accounts_page(self) -> None:
        if not self.signed_in:
            self.sign_in()
            return
        with self.client.get(
            "/accounts_page?limit=50", name="GET /accounts_page (admin)", catch_response=True
        ) as response:
            if response.status_code != 200 or 'id="accounts"' not in response.text:
                self.signed_in = False
                response.failure(f"accounts page answered {response.status_code} without the table")


def _summary(environment: Environment, **_kwargs: object) -> None:
    """Print failures and percentiles, and make any failure the run's exit status."""
    total = environment.stats.total
    print("\n=== Gatehouse user journey ===")
    print(f"requests {total.num_requests}, failures {total.num_failures} (0 expected)")
    print(
        f"{'request':<40} {'count':>7} {'fail':>5} "
        + " ".join(f"{'p' + format(p * 100, 'g'):>7}" for p in _PERCENTILES)
    )
    for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name):
        cells = " ".join(f"{entry.get_response_time_percentile(p):>7.0f}" for p in _PERCENTILES)
        print(f"{entry.name[:40]:<40} {entry.num_requests:>7} {entry.num_failures:>5} {cells}")
    print("(percentiles in ms)")
    for error in environment.stats.errors.values():
        print(f"FAILED {error.occurrences}x {error.method} {error.name}: {error.error}")
    if total.num_failures or total.num_requests == 0:
        environment.process_exit_code = 1


# registered by a call: as a decorator, locust's unannotated add_listener would
# leave _summary untyped
events.quitting.add_listener(_summary)
