"""crud against a real SQLite database: search escaping, paging bounds, rehash on login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from support.auth import PASSWORD

from gatehouse_auth import crud
from gatehouse_auth.db import create_db_engine
from gatehouse_auth.errors import AccountExists
from gatehouse_auth.migrations import upgrade
from gatehouse_auth.models import AccountCreate
from gatehouse_auth.passwords import PasswordHasher
from gatehouse_auth.settings import AuthSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    settings = AuthSettings(database_url=None, data_dir=tmp_path)
    upgrade(settings)
    engine = create_db_engine(settings)
    with Session(engine) as db:
        yield db
    engine.dispose()


def _make(session: Session, username: str, email: str, hasher: PasswordHasher) -> None:
    crud.create_account(
        session=session,
        account_in=AccountCreate(username=username, email=email, password=PASSWORD),
        hasher=hasher,
    )


def test_search_escapes_like_wildcards(session: Session) -> None:
    hasher = PasswordHasher(4)
    _make(session, "under_score", "a@example.com", hasher)
    _make(session, "underXscore", "b@example.com", hasher)
    _make(session, "percent", "100%real@example.com", hasher)
    items, total = crud.list_accounts(session=session, limit=10, offset=0, search="under_")
    assert total == 1 and items[0].username == "under_score"
    items, total = crud.list_accounts(session=session, limit=10, offset=0, search="%")
    assert total == 1 and items[0].username == "percent"
    _, total = crud.list_accounts(session=session, limit=10, offset=0, search="UNDER")
    assert total == 2  # case-insensitive


def test_page_size_is_capped(session: Session) -> None:
    hasher = PasswordHasher(4)
    for n in range(3):
        _make(session, f"user{n}", f"user{n}@example.com", hasher)
    items, total = crud.list_accounts(session=session, limit=10_000, offset=0)
    assert total == 3 and len(items) == 3
    assert crud.MAX_PAGE_SIZE == 100


def test_duplicates_raise_account_exists(session: Session) -> None:
    hasher = PasswordHasher(4)
    _make(session, "first", "first@example.com", hasher)
    with pytest.raises(AccountExists) as taken:
        _make(session, "second", "FIRST@example.com", hasher)
    assert taken.value.code == "email_taken"


def test_login_rehashes_at_the_current_cost(session: Session) -> None:
    _make(session, "oldcost", "old@example.com", PasswordHasher(4))
    newer = PasswordHasher(5)
    account = crud.authenticate(
        session=session, email="old@example.com", password=PASSWORD, hasher=newer
    )
    assert account is not None and account.hashed_password.startswith("$2b$05$")
    wrong = crud.authenticate(
        session=session, email="old@example.com", password="nope-nope", hasher=newer
    )
    assert wrong is None
    unknown = crud.authenticate(
        session=session, email="nobody@example.com", password=PASSWORD, hasher=newer
    )
    assert unknown is None
