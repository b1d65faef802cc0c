"""The services behind the accounts page tests, and the data seeded into them.

The data is seeded through the auth API (``POST /account``), except one row
no signup would accept: an email carrying markup, as an import from the
original app could have left behind. It is written with the auth service's own
model so the page's escaping is tested against a row the API really returns.
(A hostile *username* cannot be stored that way: the auth service validates
usernames again on the way out and answers 500 for such a row, so the hostile
``<script>alert(1)</script>`` reaches the page through the email column and
through the search box, which the page echoes.)
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
from sqlmodel import Session, create_engine
from support.auth import ADMIN_EMAIL, auth_env, auth_process
from support.gateway import gateway_process, write_yaml
from support.processes import ServiceProcess, free_port, python_module

from gatehouse_auth.keys import load_key
from gatehouse_auth.models import Account
from gatehouse_gateway.config.original import AUTH_PATHS

ADMIN_PASSWORD = "admin-password-42"
VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "viewer-password-42"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_EMAIL = f'{HOSTILE}"><img src=x onerror=alert(2)>@example.com'
HOSTILE_ROW_USERNAME = HOSTILE  # written straight into the database: signup refuses it
SEEDED = 26  # seed-00 .. seed-25, so three pages of ten with the others


@dataclass
class Stack:
    """The running services and what was seeded into them.

    ``ui_spare`` is a second accounts page whose auth service is ``spare_port``:
    closed, unless a test puts a stand-in there for a while.
    """

    auth: ServiceProcess
    ui: ServiceProcess
    gateway: ServiceProcess
    ui_spare: ServiceProcess
    spare_port: int
    keys_dir: Path
    total: int
    seeded: list[str] = field(default_factory=list)

    @property
    def page_url(self) -> str:
        return f"{self.ui.url}/accounts_page"


def ui_auth_process(
    database_url: str, data_dir: Path, *, port: int | None = None, **settings: str
) -> ServiceProcess:
    """The auth service behind the pages, with the admin the pages sign in as."""
    defaults = {
        "rate_limit_per_email": "200",
        "rate_limit_per_email_client": "200",
        # the page's tests seed more accounts than one client may sign up
        "signup_rate_limit_per_client": "0",
        "log_level": "warning",
    }
    env = auth_env(
        data_dir,
        database_url=database_url,
        redis_prefix=None,  # in-process rate limiter: no shared keys to clean
        admin_password=ADMIN_PASSWORD,
        **{**defaults, **settings},
    )
    return auth_process(env, name="auth-for-ui", port=port)


def ui_process(
    auth_url: str, name: str = "accounts-ui", auth_timeout: float = 3.0
) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        name=name,
        command=python_module("gatehouse_accounts_ui", "--port", str(port), "--auth-url", auth_url),
        port=port,
        env={"GATEHOUSE_ACCOUNTS_UI_AUTH_TIMEOUT": str(auth_timeout)},
    )


def ui_gateway_process(config_dir: Path, auth_url: str, ui_url: str) -> ServiceProcess:
    """A real gateway whose routes send the auth paths and /accounts_page on, as the demo's do."""
    config = config_dir / "gateway.yaml"
    write_yaml(
        config,
        {
            "auth": {"jwks_url": f"{auth_url}/.well-known/jwks.json"},
            "cursor": {"store": "local"},
            "routes": [
                {
                    "name": "auth",
                    "path_prefix": list(AUTH_PATHS),
                    "backends": [{"url": auth_url}],
                },
                {
                    "name": "accounts-ui",
                    "path_prefix": ["/accounts_page"],
                    "backends": [{"url": ui_url}],
                },
            ],
        },
    )
    return gateway_process(config, name="gateway-for-ui", env={"REDIS_URL": ""})


def seed(auth_url: str, database_url: str) -> list[str]:
    names = []
    with httpx.Client(base_url=auth_url, timeout=10) as client:
        viewer = {"username": "viewer", "email": VIEWER_EMAIL, "password": VIEWER_PASSWORD}
        client.post("/account", json=viewer).raise_for_status()
        for i in range(SEEDED):
            name = f"seed-{i:02d}"
            body = {"username": name, "email": f"{name}@example.com", "password": "seed-pass-42"}
            client.post("/account", json=body).raise_for_status()
            names.append(name)
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            session.add(
                Account(username=HOSTILE_ROW_USERNAME, email=HOSTILE_EMAIL, hashed_password="!")
            )
            session.commit()
    finally:
        engine.dispose()
    return names


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The form token a rendered page carries."""
    match = _TOKEN.search(html)
    if match is None:
        raise AssertionError("the page has no CSRF token")
    return match.group(1)


def sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    """Sign in as a browser would: load the form, post it with its token."""
    form = client.get("/accounts_page")
    return client.post(
        "/accounts_page/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(form.text)},
    )


def admin_token(keys_dir: Path, *, expires_in: int) -> str:
    """An admin token signed with the auth service's own key, expiring when asked.

    The only way to hold an expired token without waiting fifteen minutes.
    """
    key = load_key(sorted(keys_dir.glob("*.pem"))[-1])
    now = int(time.time())
    claims = {
        "iss": "gatehouse-auth",
        "aud": "gatehouse",
        "sub": "1",
        "email": ADMIN_EMAIL,
        "roles": ["admin"],
        "iat": now - 3600,
        "nbf": now - 3600,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
