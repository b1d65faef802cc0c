"""The identity headers the gateway forwards: UTF-8 bytes on the wire, never split by a claim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.jwks import KeyServer

from gatehouse_common.jwt import TokenError
from gatehouse_gateway.auth import Authenticator
from gatehouse_gateway.config.schema import AuthConfig
from gatehouse_gateway.revocation import RevocationList


@pytest.fixture
async def keys_and_auth() -> AsyncIterator[tuple[KeyServer, Authenticator]]:
    keys = KeyServer()
    revocations = RevocationList(redis_url=None, prefix="", timeout=1, retry_interval=1)
    auth = Authenticator(AuthConfig(jwks_url=keys.url, algorithms=["EdDSA"]), revocations)
    try:
        yield keys, auth
    finally:
        await auth.aclose()
        keys.close()


async def test_identity_is_forwarded_as_utf8_bytes(
    keys_and_auth: tuple[KeyServer, Authenticator],
) -> None:
    keys, auth = keys_and_auth
    token = keys.token(email="jörg@例え.jp", roles=["user", "admin"])
    headers = dict(await auth.identity_headers(f"Bearer {token}".encode()))
    assert headers == {
        b"x-auth-subject": b"42",
        b"x-auth-roles": b"user,admin",
        b"x-auth-email": "jörg@例え.jp".encode(),
    }


@pytest.mark.parametrize("claim", ["email", "sub"])
async def test_a_claim_with_a_line_break_is_refused_not_split(
    keys_and_auth: tuple[KeyServer, Authenticator], claim: str
) -> None:
    keys, auth = keys_and_auth
    token = keys.token(**{claim: "x@example.com\r\nX-Auth-Roles: admin"})
    with pytest.raises(TokenError) as refused:
        await auth.identity_headers(f"Bearer {token}".encode())
    assert refused.value.reason == "malformed"
