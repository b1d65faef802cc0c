"""The account models: rules apply to what comes in, not to what is shown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from gatehouse_auth.models import Account, AccountCreate, AccountPublic

pytestmark = pytest.mark.unit


def test_a_stored_row_outside_the_signup_rules_is_still_shown() -> None:
    row = Account(
        id=7,
        username="<script>alert(1)</script>",
        email="legacy@example.com",
        hashed_password="x",
        role="user",
        created_at=datetime(2024, 1, 1),
    )
    shown = AccountPublic.model_validate(row)
    assert shown.username == "<script>alert(1)</script>"
    assert shown.created_at.tzinfo is UTC  # SQLite's naive time read as UTC
    assert "hashed_password" not in shown.model_dump()


def test_the_same_name_is_refused_at_signup() -> None:
    with pytest.raises(ValidationError, match="username"):
        AccountCreate(
            username="<script>alert(1)</script>",
            email="new@example.com",
            password="correct horse",
        )
