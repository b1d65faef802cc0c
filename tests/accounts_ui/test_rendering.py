"""The templates escape every value, whichever column or field it lands in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from accounts_ui.pages import account, render_listing
from markupsafe import escape

from gatehouse_accounts_ui.rendering import format_iso, format_utc

pytestmark = pytest.mark.unit

HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "value",
    [HOSTILE, '"><img src=x onerror=alert(1)>', "'; alert(1); '", "</td></tr></table><h1>x"],
)
def test_every_column_and_the_search_are_escaped(value: str) -> None:
    html = render_listing([account(value, f"{value}@example.com", role=value)], search=value)
    assert value not in html  # nowhere raw: not in a cell, not in the search box
    # username, email, role, search box; then the row's action forms: the label
    # (username and email) of four, the role menu's label, the lockout's email
    assert html.count(str(escape(value))) == 4 + 4 * 2 + 1 + 1


def test_the_hostile_username_is_shown_as_its_text() -> None:
    html = render_listing([account(HOSTILE, "x@example.com")])
    assert (
        '<td data-label="Username" class="username">&lt;script&gt;alert(1)&lt;/script&gt;</td>'
        in html
    )


def test_times_are_shown_in_utc_whatever_zone_auth_used() -> None:
    plus_two = datetime(2026, 1, 2, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    assert format_utc(plus_two) == "2026-01-02 10:30 UTC"
    assert format_utc(datetime(2026, 1, 2, 12, 30)) == "2026-01-02 12:30 UTC"  # naive means UTC
    assert format_iso(plus_two) == "2026-01-02T10:30:00+00:00"
    assert format_iso(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00+00:00"
