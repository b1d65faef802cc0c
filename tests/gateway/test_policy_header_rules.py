"""Header rules: templates parsed once, filled from the verified token, hostile config refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.config.header_rules import HeaderOps, HeaderRulesConfig
from gatehouse_gateway.config.schema import RouteConfig
from gatehouse_gateway.policy.header_rules import HeaderEdits, Template

pytestmark = pytest.mark.unit

RID = b"rid-1"
CLIENT = b"198.51.100.7"


def token(**claims: Any) -> VerifiedToken:
    return VerifiedToken(
        subject="42",
        email=None,
        roles=("user",),
        expires_at=0.0,
        claims={"sub": "42", **claims},
    )


@pytest.mark.parametrize(
    ("template", "identity", "expected"),
    [
        ("static", None, b"static"),
        ("{{literal}}", None, b"{literal}"),
        ("id={request_id} from {client_address}", None, b"id=rid-1 from 198.51.100.7"),
        ("user-{subject}", token(), b"user-42"),
        ("{claim.tenant}", token(tenant="acme"), b"acme"),
        ("{claim.groups}", token(groups=["a", "b"]), b"a,b"),
        ("{claim.n}/{claim.ok}", token(n=7, ok=True), b"7/true"),
        ("{claim.name}", token(name="Jörg"), "Jörg".encode()),
        # nothing behind a placeholder: the header is not set at all
        ("{subject}", None, None),
        ("t={claim.tenant}", token(), None),
        ("{claim.obj}", token(obj={"a": 1}), None),
        ("{claim.null}", token(null=None), None),
        ("{claim.list}", token(list=[{"a": 1}]), None),
        # a signed claim with a line break is refused, never split into two headers
        ("{claim.tenant}", token(tenant="acme\r\nX-Auth-Roles: admin"), None),
        ("{claim.tenant}", token(tenant="a\x00b"), None),
        ("{subject}", VerifiedToken("4\n2", None, (), 0.0, {}), None),
    ],
)
def test_template_values(
    template: str, identity: VerifiedToken | None, expected: bytes | None
) -> None:
    assert Template(template).render(identity, RID, CLIENT) == expected


def test_edits_remove_then_set_then_add() -> None:
    edits = HeaderEdits(
        HeaderOps(
            set={"X-Tenant": "{claim.tenant}", "x-static": "1"},
            add={"x-extra": "{request_id}"},
            remove=["Cookie"],
        )
    )
    headers = [
        (b"cookie", b"session=secret"),
        (b"x-tenant", b"forged-by-client"),
        (b"accept", b"*/*"),
    ]
    out = edits.apply(headers, token(tenant="acme"), RID, CLIENT)
    assert out == [
        (b"accept", b"*/*"),
        (b"x-tenant", b"acme"),
        (b"x-static", b"1"),
        (b"x-extra", RID),
    ]
    # no token: the client's forged value is still removed, nothing put in its place
    assert (b"x-tenant", b"forged-by-client") not in edits.apply(headers, None, RID, CLIENT)
    assert headers[1] == (b"x-tenant", b"forged-by-client")  # the input list is not changed


@pytest.mark.parametrize(
    "name",
    [
        "X-Auth-Subject",
        "x-auth-anything",
        "x_auth_roles",
        "X-Forwarded-For",
        "x-forwarded-whatever",
        "Forwarded",
        "X-Real-IP",
        "X-Request-ID",
        "Host",
        "Connection",
        "Transfer-Encoding",
        "TE",
        "Upgrade",
        "Content-Length",
        "Proxy-Authorization",
        "bad name",
        "x-h\r\nx",
        "",
    ],
)
@pytest.mark.parametrize("op", ["set", "add", "remove"])
def test_forbidden_and_invalid_names_are_config_errors(name: str, op: str) -> None:
    ops: dict[str, Any] = {"remove": [name]} if op == "remove" else {op: {name: "v"}}
    with pytest.raises(ValidationError):
        HeaderRulesConfig.model_validate({"request": ops})
    with pytest.raises(ValidationError):
        HeaderRulesConfig.model_validate({"response": ops})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{unknown}", "unknown placeholder"),
        ("{claim.}", "unknown placeholder"),
        ("{claim.a b}", "unknown placeholder"),
        ("{ subject }", "unknown placeholder"),
        ("{subject", "lone"),
        ("subject}", "lone"),
        ("a\r\nb", "control character"),
        ("a\nX-Auth-Subject: 1", "control character"),
        ("nul\x00", "control character"),
        ("x" * 5000, "at most"),
    ],
)
def test_bad_templates_are_config_errors(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        HeaderRulesConfig.model_validate({"request": {"set": {"x-v": value}}})
    assert message in str(refused.value)


def test_a_name_in_two_operations_or_twice_is_an_error() -> None:
    with pytest.raises(ValidationError, match="more than one"):
        HeaderOps.model_validate({"set": {"x-a": "1"}, "remove": ["X-A"]})
    with pytest.raises(ValidationError, match="twice"):
        HeaderOps.model_validate({"add": {"x-a": "1", "X-A": "2"}})


def route(**extra: Any) -> dict[str, Any]:
    return {"name": "r", "backends": [{"url": "http://127.0.0.1:1"}], **extra}


def test_token_templates_need_a_route_that_requires_auth() -> None:
    rules = {"request": {"set": {"x-tenant": "{claim.tenant}"}}}
    with pytest.raises(ValidationError, match="auth: required"):
        RouteConfig.model_validate(route(headers=rules))
    RouteConfig.model_validate(route(headers=rules, auth="required"))
    RouteConfig.model_validate(route(headers={"request": {"set": {"x-rid": "{request_id}"}}}))


def test_response_rules_cannot_fight_the_routes_cors() -> None:
    cors = {"allow_origins": ["https://a.example"]}
    for name in ["Access-Control-Allow-Origin", "vary"]:
        with pytest.raises(ValidationError, match="cors"):
            RouteConfig.model_validate(route(cors=cors, headers={"response": {"set": {name: "*"}}}))
    # without cors: the route's own business
    RouteConfig.model_validate(route(headers={"response": {"set": {"vary": "Accept"}}}))
