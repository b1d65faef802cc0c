"""Which new passwords are refused, with a rule a person can act on (NIST SP 800-63B 5.1.1.2)."""

from __future__ import annotations

import pytest

from gatehouse_auth.password_policy import (
    WeakPassword,
    check_password_strength,
    context_words,
)

pytestmark = pytest.mark.unit

EMAIL, USERNAME = "maria.lopez@example.com", "mlopez"


def _rule(password: str, min_score: int = 3) -> str | None:
    try:
        check_password_strength(password, email=EMAIL, username=USERNAME, min_score=min_score)
    except WeakPassword as exc:
        assert str(exc) == exc.message and exc.message.startswith("password is too")
        return exc.rule
    return None


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("password", "password_too_common"),
        ("12345678", "password_too_common"),
        ("P@ssw0rd", "password_too_common"),  # l33t spelling is no disguise
        ("qwertyuiop", "password_too_common"),  # a keyboard row
        ("abcdefghij", "password_too_common"),  # a sequence
        (EMAIL, "password_too_similar"),
        (EMAIL.upper(), "password_too_similar"),
        ("maria.lopez", "password_too_similar"),
        (USERNAME, "password_too_similar"),
        ("mlopez2024", "password_too_similar"),
        ("correct horse battery", None),
        ("k3J9-vL2q8WmZ0rT5yH1", None),
    ],
)
def test_rules(password: str, rule: str | None) -> None:
    assert _rule(password) == rule


def test_the_minimum_score_is_configurable() -> None:
    assert _rule("password", min_score=0) is None  # off
    assert _rule("correct-horse", min_score=3) is None
    assert _rule("correct-horse", min_score=4) == "password_too_common"


def test_context_words_are_the_email_its_local_part_and_the_username() -> None:
    assert context_words(email=EMAIL, username=USERNAME) == [EMAIL, "maria.lopez", USERNAME]
    assert context_words(email="a@b.c", username="a") == ["a@b.c", "a"]


def test_the_admin_password_makers_pass() -> None:
    """The generated development admin password is never refused by the rules it must pass."""
    from gatehouse_auth.passwords import generate_password

    for _ in range(50):
        check_password_strength(
            generate_password(), email="admin@example.com", username="admin", min_score=4
        )
