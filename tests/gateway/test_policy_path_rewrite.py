"""Path rewrites: whole segments only, always an absolute path, redirects mapped back."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_gateway.config.rewrite import PathRewriteConfig
from gatehouse_gateway.config.schema import RouteConfig
from gatehouse_gateway.policy.path_rewrite import PathRewrite

pytestmark = pytest.mark.unit

ORIGIN = b"https://gw.example"


def rewrite(**config: Any) -> PathRewrite:
    return PathRewrite(PathRewriteConfig.model_validate(config))


@pytest.mark.parametrize(
    ("config", "path", "expected"),
    [
        ({"strip_prefix": "/api"}, b"/api/users", b"/users"),
        ({"strip_prefix": "/api"}, b"/api", b"/"),
        ({"strip_prefix": "/api"}, b"/api/", b"/"),
        ({"strip_prefix": "/api"}, b"/apix", b"/apix"),  # not the segment
        ({"strip_prefix": "/api"}, b"/other", b"/other"),
        ({"strip_prefix": "/api/v1"}, b"/api/v1/a/b", b"/a/b"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v1/items", b"/v2/items"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v1", b"/v2"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v10", b"/v10"),
        ({"replace_prefix": {"from": "/v1", "to": "/"}}, b"/v1/x", b"/x"),
        ({"replace_prefix": {"from": "/v1", "to": "/"}}, b"/v1", b"/"),
        ({"replace_prefix": {"from": "/", "to": "/app"}}, b"/x/y", b"/app/x/y"),
        ({"replace_prefix": {"from": "/a", "to": "/b/c"}}, b"/a/%41%2F", b"/b/c/%41%2F"),
    ],
)
def test_backend_path(config: dict[str, Any], path: bytes, expected: bytes) -> None:
    result = rewrite(**config).backend_path(path)
    assert result == expected
    assert result.startswith(b"/")


@pytest.mark.parametrize(
    ("config", "location", "expected"),
    [
        ({"strip_prefix": "/api"}, b"/login", b"/api/login"),
        ({"strip_prefix": "/api"}, b"/login?next=/x#f", b"/api/login?next=/x#f"),
        ({"strip_prefix": "/api"}, b"/", b"/api/"),
        ({"strip_prefix": "/api"}, b"https://gw.example/login", b"https://gw.example/api/login"),
        ({"strip_prefix": "/api"}, b"HTTPS://GW.example/login", b"HTTPS://GW.example/api/login"),
        # another host, a scheme-relative or relative reference: as sent
        (
            {"strip_prefix": "/api"},
            b"https://elsewhere.example/login",
            b"https://elsewhere.example/login",
        ),
        (
            {"strip_prefix": "/api"},
            b"https://gw.example.evil/login",
            b"https://gw.example.evil/login",
        ),
        ({"strip_prefix": "/api"}, b"//gw.example/login", b"//gw.example/login"),
        ({"strip_prefix": "/api"}, b"login", b"login"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v2/items/1", b"/v1/items/1"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v2?x", b"/v1?x"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v3/items", b"/v3/items"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2"}}, b"/v20", b"/v20"),
    ],
)
def test_location_is_mapped_back(config: dict[str, Any], location: bytes, expected: bytes) -> None:
    mapped = rewrite(**config)
    assert mapped.client_url(b"location", location, ORIGIN) == expected
    assert mapped.client_url(b"content-location", location, ORIGIN) == expected
    assert mapped.client_url(b"refresh", location, ORIGIN) == location


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strip_prefix": "api"}, "absolute"),
        ({"strip_prefix": ""}, "absolute"),
        ({"strip_prefix": "/api/"}, "trailing"),
        ({"strip_prefix": "/"}, "changes nothing"),
        ({"strip_prefix": "/a/../b"}, "normal form"),
        ({"strip_prefix": "//api"}, "normal form"),
        ({"strip_prefix": "/a?x=1"}, "character"),
        ({"strip_prefix": "/a#x"}, "character"),
        ({"strip_prefix": "/a b"}, "character"),
        ({"strip_prefix": "/a\r\nb"}, "character"),
        ({"strip_prefix": "/a%2Fb"}, "escaped"),
        ({"strip_prefix": "/a%zz"}, "%"),
        ({"replace_prefix": {"from": "/v1", "to": "v2"}}, "absolute"),
        ({"replace_prefix": {"from": "/v1"}}, "Field required"),
        ({"replace_prefix": {"from": "/v1", "to": "/v2", "x": 1}}, "Extra inputs"),
        ({"strip_prefix": "/a", "replace_prefix": {"from": "/v1", "to": "/v2"}}, "exactly one"),
        ({}, "exactly one"),
    ],
)
def test_hostile_config_is_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PathRewriteConfig.model_validate(config)
    assert message in str(refused.value)


def test_the_rewrite_must_cover_every_prefix_of_the_route() -> None:
    base = {"name": "r", "backends": [{"url": "http://127.0.0.1:1"}]}
    RouteConfig.model_validate(
        {**base, "path_prefix": ["/api", "/api/v2"], "path_rewrite": {"strip_prefix": "/api"}}
    )
    with pytest.raises(ValidationError, match="does not cover"):
        RouteConfig.model_validate(
            {**base, "path_prefix": ["/api", "/other"], "path_rewrite": {"strip_prefix": "/api"}}
        )
    with pytest.raises(ValidationError, match="does not cover"):
        RouteConfig.model_validate({**base, "path_rewrite": {"strip_prefix": "/api"}})
