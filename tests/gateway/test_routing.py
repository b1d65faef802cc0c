"""Route matching: exact and wildcard hosts (port ignored), then the longest path prefix."""

from __future__ import annotations

import pytest

from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.config.loader import parse_config
from gatehouse_gateway.routing import RouteTable, build_table

pytestmark = pytest.mark.unit


def _table(*routes: dict[str, object]) -> RouteTable:
    loaded = parse_config({"routes": list(routes)})
    return build_table(loaded.config, LocalCursor())


def _route(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "backends": [{"url": "http://127.0.0.1:1"}], **extra}


def _match(table: RouteTable, host: str, path: str) -> str | None:
    route = table.match(host.encode(), path)
    return route.name if route else None


TABLE = _table(
    _route("exact", hosts=["api.example.com"]),
    _route("exact-v2", hosts=["api.example.com"], path_prefix="/v2/"),
    _route("wild", hosts=["*.example.com"]),
    _route("deeper-wild", hosts=["*.eu.example.com"]),
    _route("auth", path_prefix=["/account", "/login", "/.well-known/"]),
    _route("ui", path_prefix="/accounts_page"),
)


def test_exact_host_wins_and_port_and_case_are_ignored() -> None:
    assert _match(TABLE, "api.example.com", "/x") == "exact"
    assert _match(TABLE, "API.Example.COM:8080", "/x") == "exact"


def test_longest_prefix_wins_within_a_host() -> None:
    assert _match(TABLE, "api.example.com", "/v2/items") == "exact-v2"
    assert _match(TABLE, "api.example.com", "/v2") == "exact"


def test_wildcards_longest_suffix_first_and_not_the_bare_domain() -> None:
    assert _match(TABLE, "shop.example.com", "/") == "wild"
    assert _match(TABLE, "a.eu.example.com:443", "/") == "deeper-wild"
    assert _match(TABLE, "example.com", "/x") is None
    assert _match(TABLE, "evilexample.com", "/x") is None


def test_any_host_routes_catch_their_prefixes_only() -> None:
    assert _match(TABLE, "localhost:8080", "/login") == "auth"
    assert _match(TABLE, "localhost", "/accounts_page") == "ui"
    assert _match(TABLE, "localhost", "/.well-known/jwks.json") == "auth"
    assert _match(TABLE, "unknown.test", "/other") is None
    assert _match(TABLE, "", "/other") is None


def test_hostile_host_headers_do_not_match_or_crash() -> None:
    for host in ["\xff\xfe", "[::1]:80", "a" * 5000, "api.example.com.", ":::"]:
        assert _match(TABLE, host, "/other") is None


def test_reload_keeps_backend_state_of_unchanged_backends() -> None:
    cursor = LocalCursor()
    first = build_table(parse_config({"routes": [_route("r")]}).config, cursor)
    first.routes[0].backends[0].in_flight = 3
    second_config = parse_config(
        {"routes": [_route("r", backends=[{"url": "http://127.0.0.1:1"}, {"url": "http://h:2"}])]}
    ).config
    second = build_table(second_config, cursor, previous=first)
    assert second.routes[0].backends[0] is first.routes[0].backends[0]
    assert second.routes[0].backends[0].in_flight == 3
    assert second.routes[0].backends[1].in_flight == 0
