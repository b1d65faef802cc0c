"""gatehouse-auth's commands: migrate, create-admin, --help; and serve's flags."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import jwt
import psycopg2
import pytest
from support.auth import PASSWORD, AuthService, auth_env, login_token, run_cli, signup
from support.databases import temporary_database
from support.processes import free_port

from gatehouse_auth.cli import build_parser, main, run_create_admin, run_migrate
from gatehouse_auth.settings import AuthSettings


@pytest.fixture
def fresh_env(tmp_path: Path):
    with temporary_database("cli") as url:
        yield url, auth_env(tmp_path, database_url=url, redis_prefix=None)


def _tables(url: str) -> set[str]:
    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cur.fetchall()}


def test_migrate_creates_the_schema_and_is_idempotent(fresh_env: tuple[str, dict]) -> None:
    url, env = fresh_env
    assert _tables(url) == set()
    first = run_cli(env, "migrate")
    assert "revision 0003_admin" in first.stdout
    tables = {
        "accounts",
        "sessions",
        "refresh_tokens",
        "password_resets",
        "totp_recovery_codes",
        "audit_events",
        "alembic_version",
    }
    assert _tables(url) == tables
    again = AuthSettings(database_url=url)
    assert run_migrate(again) == 0  # a second run changes nothing
    assert _tables(url) == tables


def test_migrate_against_an_unreachable_database_fails_cleanly(
    capsys: pytest.CaptureFixture,
) -> None:
    settings = AuthSettings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    assert run_migrate(settings) == 1
    err = capsys.readouterr().err
    assert "migration failed" in err and "Connection refused" in err
    assert "Traceback" not in err


def test_create_admin_promotes_an_existing_account(auth_service: AuthService) -> None:
    with auth_service.client() as client:
        account = signup(client)
        user_token = login_token(client, account["email"], PASSWORD)
        assert (
            client.get("/accounts", headers={"Authorization": f"Bearer {user_token}"}).status_code
            == 403
        )
        result = run_cli(
            auth_service.env,
            "create-admin",
            "--email",
            account["email"],
            "--password",
            "new-admin-castle-keys",
        )
        assert "updated" in result.stdout
        # the new password works, the old one does not, and the role is admin
        assert (
            client.post(
                "/login", json={"email": account["email"], "password": PASSWORD}
            ).status_code
            == 401
        )
        token = login_token(client, account["email"], "new-admin-castle-keys")
        assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["admin"]
        assert (
            client.get("/accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        # the old token named the user role, but the role is read from the database
        assert (
            client.get("/accounts", headers={"Authorization": f"Bearer {user_token}"}).status_code
            == 200
        )


def test_create_admin_creates_one(auth_service: AuthService, capsys: pytest.CaptureFixture) -> None:
    email = f"boss.{uuid.uuid4().hex[:8]}@example.com"
    settings = AuthSettings(**_settings_of(auth_service))
    args = build_parser().parse_args(
        ["create-admin", "--email", email, "--password", "boss-castle-keys-42"]
    )
    assert run_create_admin(settings, args) == 0
    assert "created" in capsys.readouterr().out
    with httpx.Client(base_url=auth_service.url) as client:
        token = login_token(client, email, "boss-castle-keys-42")
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["admin"]


def _settings_of(service: AuthService) -> dict[str, str]:
    return {
        "database_url": service.env["DATABASE_URL"] or None,
        "data_dir": service.env["GATEHOUSE_AUTH_DATA_DIR"],
        "bcrypt_rounds": 4,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--password", "long-enough"], "email"),
        (["--email", "ok@example.com", "--password", "p" * 73], "72 bytes"),
        (["--email", "ok@example.com", "--password", "short"], "at least 8"),
        (["--email", "o'brien@example.com", "--password", "long-enough"], "--username"),
        (["--email", "okay@example.com", "--password", "password"], "too common"),
        (["--email", "boss.man@example.com", "--password", "boss.man2024"], "too similar"),
    ],
)
def test_create_admin_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    settings = AuthSettings(database_url=None, data_dir=tmp_path)
    assert run_create_admin(settings, build_parser().parse_args(["create-admin", *args])) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "auth.db").exists()  # refused before touching the database


def test_help_lists_the_commands(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "migrate", "create-admin"):
        assert command in out
    serve = build_parser().parse_args(["serve", "--port", "1234", "--workers", "2", "--migrate"])
    assert (serve.port, serve.workers, serve.migrate) == (1234, 2, True)
