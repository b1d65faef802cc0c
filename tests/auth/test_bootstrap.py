"""The admin ensured at start: generated in development, retried until the database is ready."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session
from support.auth import ADMIN_EMAIL, PASSWORD, StartAuth, signup

from gatehouse_auth import crud
from gatehouse_auth.bootstrap import ADMIN_PASSWORD_FILE, ensure_admin_account
from gatehouse_auth.db import create_db_engine
from gatehouse_auth.migrations import upgrade
from gatehouse_auth.models import AccountCreate
from gatehouse_auth.passwords import PasswordHasher
from gatehouse_auth.settings import AuthSettings

# Functional bound: the bootstrap retries every 5 s; a loaded machine gets slack.
ADMIN_APPEARS_WITHIN_SECONDS = 40


def _wait_for_login(client: httpx.Client, password: str) -> httpx.Response:
    deadline = time.monotonic() + ADMIN_APPEARS_WITHIN_SECONDS
    while True:
        response = client.post("/login", json={"email": ADMIN_EMAIL, "password": password})
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_unmigrated_service_answers_503_then_ensures_a_generated_admin(
    start_auth: StartAuth,
) -> None:
    """No migrations yet and no admin password: 503s, then, once migrated, a working admin."""
    service = start_auth(
        name="unmigrated", redis=False, migrate=False, extra_env={"GATEHOUSE_ADMIN_PASSWORD": ""}
    )
    with service.client() as client:
        body = {"username": "early", "email": "early@example.com", "password": PASSWORD}
        response = client.post("/account", json=body)
        assert response.status_code == 503
        assert response.json()["error"] == "database_unavailable"

        upgrade(AuthSettings(database_url=None, data_dir=service.data_dir))
        password_file = service.data_dir / ADMIN_PASSWORD_FILE
        assert oct(password_file.stat().st_mode & 0o777) == "0o600"
        password = password_file.read_text().strip()
        assert len(password) >= 16
        assert _wait_for_login(client, password).status_code == 200
        assert signup(client)
    assert f"password={password}" in service.process.log_text()  # shown for the demo


def _engine_for(tmp_path: Path, **settings: object) -> tuple[AuthSettings, object]:
    config = AuthSettings(database_url=None, data_dir=tmp_path, **settings)
    upgrade(config)
    return config, create_db_engine(config)


@pytest.mark.unit
def test_generated_password_is_kept_across_starts(tmp_path: Path) -> None:
    settings, engine = _engine_for(tmp_path, admin_password=None)
    hasher = PasswordHasher(4)
    assert ensure_admin_account(engine, settings, hasher)
    first = (tmp_path / ADMIN_PASSWORD_FILE).read_text()
    assert ensure_admin_account(engine, settings, hasher)
    assert (tmp_path / ADMIN_PASSWORD_FILE).read_text() == first
    with Session(engine) as session:
        assert crud.authenticate(
            session=session, email=ADMIN_EMAIL, password=first.strip(), hasher=hasher
        )


@pytest.mark.unit
def test_configured_admin_is_promoted_and_rekeyed(tmp_path: Path) -> None:
    settings, engine = _engine_for(tmp_path, admin_password=SecretStr("first-password"))
    hasher = PasswordHasher(4)
    assert ensure_admin_account(engine, settings, hasher)
    changed = settings.model_copy(update={"admin_password": SecretStr("second-password")})
    assert ensure_admin_account(engine, changed, hasher)
    with Session(engine) as session:
        assert not crud.authenticate(
            session=session, email=ADMIN_EMAIL, password="first-password", hasher=hasher
        )
        account = crud.authenticate(
            session=session, email=ADMIN_EMAIL, password="second-password", hasher=hasher
        )
        assert account is not None and account.role == "admin"
    assert not (tmp_path / ADMIN_PASSWORD_FILE).exists()  # nothing generated


@pytest.mark.unit
def test_production_without_a_password_touches_no_admin(tmp_path: Path) -> None:
    settings, engine = _engine_for(tmp_path, admin_password=None, environment="production")
    assert ensure_admin_account(engine, settings, PasswordHasher(4)) is False
    with Session(engine) as session:
        assert crud.get_account_by_email(session=session, email=ADMIN_EMAIL) is None
    assert not (tmp_path / ADMIN_PASSWORD_FILE).exists()


@pytest.mark.unit
@pytest.mark.parametrize("weak", ["password123", "admin@example.com", "admin1234"])
def test_a_weak_admin_password_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, weak: str
) -> None:
    """The admin's password passes the rules every sign-up does."""
    settings, engine = _engine_for(tmp_path, admin_password=SecretStr(weak))
    assert ensure_admin_account(engine, settings, PasswordHasher(4)) is False
    with Session(engine) as session:
        assert crud.get_account_by_email(session=session, email=ADMIN_EMAIL) is None
    assert "GATEHOUSE_ADMIN_PASSWORD is refused" in caplog.text
    assert weak not in caplog.text


@pytest.mark.unit
def test_admin_username_taken_by_someone_else_gets_a_suffix(tmp_path: Path) -> None:
    settings, engine = _engine_for(tmp_path, admin_password=SecretStr("admin-password"))
    hasher = PasswordHasher(4)
    with Session(engine) as session:
        crud.create_account(
            session=session,
            account_in=AccountCreate(
                username="Admin", email="other@example.com", password=PASSWORD
            ),
            hasher=hasher,
        )
    assert ensure_admin_account(engine, settings, hasher)
    with Session(engine) as session:
        admin = crud.get_account_by_email(session=session, email=ADMIN_EMAIL)
    assert admin is not None and admin.username.startswith("admin-") and admin.role == "admin"
