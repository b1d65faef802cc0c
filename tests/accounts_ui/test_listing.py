"""Parsing the listing's query and the pagination around the table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.datastructures import QueryParams

from gatehouse_accounts_ui.auth_models import Account, AccountPage
from gatehouse_accounts_ui.errors import BadQuery
from gatehouse_accounts_ui.listing import ListingQuery, paginate, parse_listing

pytestmark = pytest.mark.unit


def test_defaults_apply_to_missing_and_empty_values() -> None:
    assert parse_listing(QueryParams(""), 25) == ListingQuery(limit=25, offset=0, search="")
    assert parse_listing(QueryParams("limit=&offset=&search="), 10) == ListingQuery(10, 0, "")


def test_values_are_read_and_search_trimmed() -> None:
    query = parse_listing(QueryParams("limit=50&offset=100&search=%20bob%20"), 25)
    assert query == ListingQuery(limit=50, offset=100, search="bob")


@pytest.mark.parametrize(
    "raw",
    [
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=%EF%BC%95",
        "offset=10000001",
        "offset=+1",
    ],
)
def test_out_of_bounds_values_are_refused(raw: str) -> None:
    with pytest.raises(BadQuery):
        parse_listing(QueryParams(raw), 25)


def _page(total: int, shown: int) -> AccountPage:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        Account(id=i, username=f"u{i}", email=f"u{i}@example.com", role="user", created_at=created)
        for i in range(shown)
    ]
    return AccountPage(items=items, total=total, limit=10, offset=0)


def test_first_page_links_forward_only() -> None:
    pages = paginate(ListingQuery(10, 0, "bob"), _page(total=25, shown=10))
    assert (pages.first, pages.last, pages.page, pages.pages) == (1, 10, 1, 3)
    assert pages.previous_url is None
    assert pages.next_url == "/accounts_page?search=bob&limit=10&offset=10"


def test_last_page_links_back_only() -> None:
    pages = paginate(ListingQuery(10, 20, ""), _page(total=25, shown=5))
    assert (pages.first, pages.last, pages.page, pages.pages) == (21, 25, 3, 3)
    assert pages.previous_url == "/accounts_page?limit=10&offset=10"
    assert pages.next_url is None


def test_an_offset_between_pages_steps_back_to_zero_not_below() -> None:
    pages = paginate(ListingQuery(10, 5, ""), _page(total=25, shown=10))
    assert pages.previous_url == "/accounts_page?limit=10"


def test_empty_results_have_one_page_and_no_links() -> None:
    pages = paginate(ListingQuery(10, 0, "zzz"), _page(total=0, shown=0))
    assert (pages.first, pages.last, pages.pages) == (0, 0, 1)
    assert pages.previous_url is None and pages.next_url is None
