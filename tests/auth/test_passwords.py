"""bcrypt hashing: the dummy hash, the 72-byte limit, and the default cost on a real signup."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from support.auth import ADMIN_EMAIL, AuthService, StartAuth, signup

from gatehouse_auth.passwords import PasswordHasher, generate_password


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(4)


@pytest.mark.unit
def test_hash_verifies_and_never_contains_the_password(hasher: PasswordHasher) -> None:
    hashed = hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert "correct horse" not in hashed
    assert hasher.verify("correct horse", hashed)
    assert not hasher.verify("correct horsE", hashed)
    assert hasher.hash("correct horse") != hashed  # salted


@pytest.mark.unit
def test_unknown_account_is_checked_against_a_dummy_hash(hasher: PasswordHasher) -> None:
    assert hasher.verify("anything", None) is False
    assert hasher._dummy_hash.startswith(b"$2b$04$")  # same cost as real hashes


@pytest.mark.unit
def test_72_bytes_is_the_limit(hasher: PasswordHasher) -> None:
    at_limit = "ü" * 36  # 72 bytes
    hashed = hasher.hash(at_limit)
    assert hasher.verify(at_limit, hashed)
    with pytest.raises(ValueError, match="72 bytes"):
        hasher.hash(at_limit + "x")
    # a longer login attempt is wrong (not truncated into a match) and does not raise
    assert hasher.verify(at_limit + "x", hashed) is False


@pytest.mark.unit
def test_needs_rehash_when_the_cost_changes(hasher: PasswordHasher) -> None:
    assert not hasher.needs_rehash(hasher.hash("password1"))
    assert PasswordHasher(5).needs_rehash(hasher.hash("password1"))
    assert hasher.needs_rehash("garbage")


@pytest.mark.unit
def test_generated_passwords_are_long_and_distinct() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) == 20 for p in passwords)


def test_default_cost_is_12_on_a_real_signup(start_auth: StartAuth) -> None:
    service = start_auth(name="default-cost", redis=False, bcrypt_rounds="")  # "" = unset
    with service.client() as client:
        account = signup(client)
    assert _stored_hash(service, account["email"]).startswith("$2b$12$")
    # ensured before the service answered its first request
    assert _stored_hash(service, ADMIN_EMAIL).startswith("$2b$12$")


def _stored_hash(service: AuthService, email: str) -> str:
    with contextlib.closing(sqlite3.connect(service.data_dir / "auth.db")) as db:
        row = db.execute(
            "SELECT hashed_password FROM accounts WHERE email = ?", (email,)
        ).fetchone()
    return str(row[0]) if row else ""
