"""Session storage below the API: purging finished sessions (both backends)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from gatehouse_auth import sessions
from gatehouse_auth.db import create_db_engine
from gatehouse_auth.keys import KeyRing
from gatehouse_auth.migrations import upgrade
from gatehouse_auth.models import Account, utcnow
from gatehouse_auth.session_models import LoginSession, RefreshToken
from gatehouse_auth.settings import AuthSettings
from gatehouse_auth.tokens import TokenService


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_finished_sessions_are_purged_with_their_refresh_tokens(
    backend: str, tmp_path: Path, fresh_postgres_url: str
) -> None:
    settings = AuthSettings(
        database_url=fresh_postgres_url if backend == "postgres" else None, data_dir=tmp_path
    )
    upgrade(settings)
    engine = create_db_engine(settings)
    tokens = TokenService(
        KeyRing.from_folder(tmp_path / "keys", generate=True),
        issuer="i",
        audience="a",
        ttl_seconds=900,
    )
    try:
        with Session(engine) as session:
            account = Account(username="purge", email="purge@example.com", hashed_password="x")
            session.add(account)
            session.commit()
            opened = {
                name: sessions.open_session(
                    session=session,
                    account=account,
                    tokens=tokens,
                    settings=settings,
                    client_address="127.0.0.1",
                    user_agent="test",
                ).session_id
                for name in ("live", "expired", "revoked-long-ago", "revoked-just-now")
            }
            now = utcnow()
            rows = {row.id: row for row in session.exec(select(LoginSession)).all()}
            rows[opened["expired"]].expires_at = now - timedelta(seconds=1)
            rows[opened["revoked-long-ago"]].revoked_at = now - timedelta(hours=2)
            rows[opened["revoked-just-now"]].revoked_at = now
            session.add_all(rows.values())
            session.commit()

            assert sessions.purge_finished(session=session, keep_revoked=timedelta(hours=1)) == 2
            left = set(session.exec(select(LoginSession.id)).all())
            assert left == {opened["live"], opened["revoked-just-now"]}
            owners = set(session.exec(select(RefreshToken.session_id)).all())
            assert owners == left
    finally:
        engine.dispose()
