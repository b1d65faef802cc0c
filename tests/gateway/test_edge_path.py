"""The path rules: one normal form that routing, auth and the backend all see.

Unit cases for each rule, then properties (hypothesis) over paths built from
the pieces attacks are made of: normalising is idempotent, never leaves a dot
or empty segment, and the route chosen for the raw path is the route of the
path the backend receives.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.config.schema import GatewayConfig
from gatehouse_gateway.edge.path import BadPath, normalise_path
from gatehouse_gateway.routing import build_table

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (b"/", b"/"),
        (b"/a/b", b"/a/b"),
        (b"/public/../admin", b"/admin"),
        (b"/public/%2e%2e/admin", b"/admin"),
        (b"/public/%2E%2e/admin", b"/admin"),
        (b"/public/.%2e/admin", b"/admin"),
        (b"/publicXYZ/../admin", b"/admin"),
        (b"/public//../admin", b"/admin"),
        (b"/public/./../admin", b"/admin"),
        (b"/public//a/./b/../c", b"/public/a/c"),
        (b"/../../etc/passwd", b"/etc/passwd"),
        (b"/a/b/", b"/a/b/"),
        (b"/a/b/..", b"/a/"),
        (b"/a/b/.", b"/a/b/"),
        (b"//", b"/"),
        (b"/%7Euser/%41", b"/~user/A"),
        (b"/a%20b", b"/a%20b"),
        (b"/a%3fb", b"/a%3Fb"),
        (b"/a%25%32%65", b"/a%252e"),  # %25 stays: never decoded twice
        (b"/.well-known/jwks.json", b"/.well-known/jwks.json"),
        (b"/a;x=1/b", b"/a;x=1/b"),
        (b"/a/...", b"/a/..."),
    ],
)
def test_normal_forms(raw: bytes, normal: bytes) -> None:
    assert normalise_path(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        b"/public/..%2fadmin",
        b"/public%2f..%2fadmin",
        b"/public/..%5cadmin",
        b"/public/..\\admin",
        b"/a/%00",
        b"/a/%zz",
        b"/a/%4",
        b"/a/%",
        b"/a/..;/b",
        b"/a/.;x/b",
        b"admin",
        b"",
        b"*",
    ],
)
def test_paths_without_one_meaning_are_refused(raw: bytes) -> None:
    with pytest.raises(BadPath):
        normalise_path(raw)


def test_escaped_slashes_can_be_kept_escaped() -> None:
    # kept escaped, %2F is no separator: the dots after it are a plain segment name
    assert normalise_path(b"/a%2fb/..", "keep") == b"/"
    assert normalise_path(b"/public%2f..%2fadmin", "keep") == b"/public%2F..%2Fadmin"
    assert normalise_path(b"/a%5cb", "keep") == b"/a%5Cb"


PIECES = ["a", "..", ".", "%2e", "%2E%2e", ".%2e", "", "public", "publicXYZ", "x%41", "admin"]
segments = st.lists(st.sampled_from(PIECES), min_size=0, max_size=8)


def _path(parts: list[str]) -> bytes:
    return ("/" + "/".join(parts)).encode()


@settings(max_examples=400, deadline=None)
@given(segments)
def test_normalising_is_idempotent_and_leaves_no_dot_or_empty_segment(parts: list[str]) -> None:
    normal = normalise_path(_path(parts))
    assert normalise_path(normal) == normal
    inner = normal.split(b"/")[1:-1] if normal.endswith(b"/") else normal.split(b"/")[1:]
    assert all(segment not in (b"", b".", b"..") for segment in inner), normal
    assert b"%2e" not in normal.lower()


def _table() -> object:
    config = GatewayConfig.model_validate(
        {
            "auth": {"jwks_url": "http://127.0.0.1:1/jwks"},
            "routes": [
                {
                    "name": "public",
                    "path_prefix": "/public",
                    "backends": [{"url": "http://127.0.0.1:1"}],
                },
                {
                    "name": "private",
                    "path_prefix": "/",
                    "auth": "required",
                    "backends": [{"url": "http://127.0.0.1:2"}],
                },
            ],
        }
    )
    return build_table(config, LocalCursor())


TABLE = _table()


@settings(max_examples=400, deadline=None)
@given(segments)
def test_a_public_answer_is_always_for_a_public_path(parts: list[str]) -> None:
    """Whatever the client writes, the public route serves only /public and below."""
    normal = normalise_path(_path(parts))
    route = TABLE.match(b"any", normal.decode())  # type: ignore[attr-defined]
    if route.name == "public":
        assert normal == b"/public" or normal.startswith(b"/public/"), normal
    else:
        assert not (normal == b"/public" or normal.startswith(b"/public/")), normal


def test_prefixes_match_on_segment_boundaries_unless_a_route_asks_for_strings() -> None:
    config = GatewayConfig.model_validate(
        {
            "routes": [
                {"name": "account", "path_prefix": "/account", "backends": [{"url": "http://a"}]},
                {
                    "name": "string",
                    "path_prefix": "/str",
                    "path_match": "string",
                    "backends": [{"url": "http://b"}],
                },
                {"name": "rest", "path_prefix": "/", "backends": [{"url": "http://c"}]},
            ]
        }
    )
    table = build_table(config, LocalCursor())

    def name(path: str) -> str:
        route = table.match(b"h", path)
        assert route is not None
        return route.name

    assert name("/account") == "account"
    assert name("/account/x") == "account"
    assert name("/accounts") == "rest"
    assert name("/accountx/y") == "rest"
    assert name("/str") == "string"
    assert name("/strange") == "string"
    assert name("/other") == "rest"


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("/a/../b", "write '/b'"),
        ("/a//b", "write '/a/b'"),
        ("/a/%2e%2e", "write '/'"),
        ("/a\\b", "backslash"),
        ("relative", "must start with /"),
    ],
)
def test_config_prefixes_must_be_in_normal_form(prefix: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("\\", "\\\\")):
        GatewayConfig.model_validate(
            {"routes": [{"name": "r", "path_prefix": prefix, "backends": [{"url": "http://a"}]}]}
        )
