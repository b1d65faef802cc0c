"""The listing's query (page size, offset, search) and the pagination shown under it.

Parameters come from the address bar, so anyone can type anything: each is
parsed by hand, bounded, and refused with a 400 page that says which one and
why, rather than passed on to the auth service or answered with a JSON error
a person in a browser cannot act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from gatehouse_accounts_ui.auth_models import AccountPage
from gatehouse_accounts_ui.errors import BadQuery
from gatehouse_accounts_ui.paths import page_url
from gatehouse_accounts_ui.settings import PAGE_SIZES

MAX_LIMIT = max(PAGE_SIZES)
MAX_OFFSET = 10_000_000
MAX_SEARCH = 100  # the auth service refuses longer searches (422)


@dataclass(frozen=True)
class ListingQuery:
    limit: int
    offset: int
    search: str


def bounded_int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}.")
    value = int(raw)
    if not low <= value <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}.")
    return value


def parse_listing(params: QueryParams, default_limit: int) -> ListingQuery:
    """The listing asked for, or :class:`BadQuery` naming the parameter that is wrong."""
    limit = bounded_int(params, "limit", default_limit, 1, MAX_LIMIT)
    offset = bounded_int(params, "offset", 0, 0, MAX_OFFSET)
    search = params.get("search", "").strip()
    if len(search) > MAX_SEARCH:
        raise BadQuery(f"search may be at most {MAX_SEARCH} characters.")
    if any(not ch.isprintable() for ch in search):
        raise BadQuery("search may not contain control characters.")
    return ListingQuery(limit=limit, offset=offset, search=search)


@dataclass(frozen=True)
class Pagination:
    """What the template shows around the table: counts and the links to move on."""

    first: int
    last: int
    total: int
    page: int
    pages: int
    previous_url: str | None
    next_url: str | None
    first_page_url: str


def pagination(
    *, offset: int, limit: int, shown: int, total: int, url: Callable[[int], str]
) -> Pagination:
    """Counts and links for ``shown`` rows from ``offset``; ``url(offset)`` links a page."""
    has_next = offset + shown < total and shown > 0
    return Pagination(
        first=offset + 1 if shown else 0,
        last=offset + shown,
        total=total,
        page=offset // limit + 1,
        pages=max(1, -(-total // limit)),
        previous_url=url(max(0, offset - limit)) if offset > 0 else None,
        next_url=url(offset + limit) if has_next else None,
        first_page_url=url(0),
    )


def paginate(query: ListingQuery, page: AccountPage) -> Pagination:
    def url(offset: int) -> str:
        return page_url(search=query.search, limit=query.limit, offset=offset or "")

    return pagination(
        offset=query.offset, limit=query.limit, shown=len(page.items), total=page.total, url=url
    )
