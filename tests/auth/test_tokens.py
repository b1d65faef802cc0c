"""Issued tokens verify with pyjwt against the published JWKS; tampered ones do not."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from support.auth import PASSWORD, AuthService, login_token, signup

from gatehouse_auth.keys import KeyRing
from gatehouse_common.jwt import JWKSClient, TokenError, TokenVerifier


def jwks_of(client: httpx.Client) -> jwt.PyJWKSet:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return jwt.PyJWKSet.from_dict(response.json())


def verify(client: httpx.Client, token: str) -> dict:
    """What any verifier does: the key by kid from the JWKS, its own algorithm only."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwks_of(client)[kid]
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience="gatehouse",
        issuer="gatehouse-auth",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_jwks_publishes_the_signing_key(client: httpx.Client) -> None:
    response = client.get("/.well-known/jwks.json")
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["use"] == "sig"
    assert keys[0]["alg"] == "EdDSA"
    assert keys[0]["kty"] == "OKP" and keys[0]["crv"] == "Ed25519"
    assert "d" not in keys[0]  # never the private part
    assert keys[0]["kid"]


def test_token_verifies_against_jwks_with_every_claim(client: httpx.Client) -> None:
    account = signup(client)
    me = client.post("/login", json={"email": account["email"], "password": PASSWORD})
    token = me.json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    claims = verify(client, token)
    profile = client.get("/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert claims["sub"] == str(profile["id"])
    assert claims["email"] == account["email"]
    assert claims["roles"] == ["user"]
    assert claims["iss"] == "gatehouse-auth" and claims["aud"] == "gatehouse"
    assert claims["exp"] - claims["nbf"] == 900
    assert claims["nbf"] <= claims["iat"] < claims["nbf"] + 1  # iat to the millisecond
    assert claims["nbf"] <= time.time() + 1
    assert len(claims["jti"]) >= 16
    again = login_token(client, account["email"], PASSWORD)
    assert verify(client, again)["jti"] != claims["jti"]


def test_admin_token_carries_the_admin_role(client: httpx.Client, admin_token: str) -> None:
    assert verify(client, admin_token)["roles"] == ["admin"]


def _tampered_tokens(token: str) -> dict[str, str]:
    header_b64, payload_b64, signature_b64 = token.split(".")
    payload = json.loads(_unb64(payload_b64))
    header = json.loads(_unb64(header_b64))
    as_admin = _b64(json.dumps({**payload, "roles": ["admin"]}).encode())
    other_sub = _b64(json.dumps({**payload, "sub": "1"}).encode())
    signature = bytearray(_unb64(signature_b64))
    signature[0] ^= 0x01
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": header["kid"]}).encode())
    return {
        "payload_roles": f"{header_b64}.{as_admin}.{signature_b64}",
        "payload_sub": f"{header_b64}.{other_sub}.{signature_b64}",
        "signature_bit": f"{header_b64}.{payload_b64}.{_b64(bytes(signature))}",
        "alg_none": f"{none_header}.{as_admin}.",
        "unknown_kid": ".".join(
            [_b64(json.dumps({**header, "kid": "not-a-key"}).encode()), payload_b64, signature_b64]
        ),
        "truncated": f"{header_b64}.{payload_b64}",
    }


@pytest.mark.parametrize(
    "kind",
    ["payload_roles", "payload_sub", "signature_bit", "alg_none", "unknown_kid", "truncated"],
)
def test_tampered_tokens_fail_everywhere(client: httpx.Client, kind: str) -> None:
    account = signup(client)
    token = login_token(client, account["email"], PASSWORD)
    forged = _tampered_tokens(token)[kind]
    with pytest.raises((jwt.PyJWTError, KeyError)):
        verify(client, forged)
    for path in ("/me", "/accounts"):
        response = client.get(path, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, (kind, path, response.text)


def test_hs256_signed_with_the_public_key_is_refused(client: httpx.Client) -> None:
    """The classic algorithm confusion: the public key used as an HMAC secret."""
    account = signup(client)
    token = login_token(client, account["email"], PASSWORD)
    claims = verify(client, token)
    kid = jwt.get_unverified_header(token)["kid"]
    public_x = client.get("/.well-known/jwks.json").json()["keys"][0]["x"]
    forged = jwt.encode(
        {**claims, "roles": ["admin"]}, public_x.encode(), algorithm="HS256", headers={"kid": kid}
    )
    assert client.get("/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_expired_and_foreign_audience_tokens_are_refused(
    auth_service: AuthService, client: httpx.Client
) -> None:
    """Signed with the service's real key, but expired, not yet valid, or for someone else."""
    account = signup(client)
    claims = verify(client, login_token(client, account["email"], PASSWORD))
    key = KeyRing.from_folder(auth_service.keys_dir).signing_key
    now = int(time.time())
    variants = {
        "expired": {**claims, "iat": now - 4000, "nbf": now - 4000, "exp": now - 3000},
        "future": {**claims, "nbf": now + 3000, "exp": now + 4000},
        "audience": {**claims, "aud": "somebody-else"},
        "issuer": {**claims, "iss": "evil-issuer"},
        "no_exp": {k: v for k, v in claims.items() if k != "exp"},
    }
    good = jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
    assert client.get("/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    for name, payload in variants.items():
        token = jwt.encode(payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name


async def test_tokens_pass_the_gateways_verifier(auth_service: AuthService) -> None:
    """The contract end to end: gatehouse_common.jwt, as the gateway runs it, accepts them."""
    with auth_service.client() as client:
        account = signup(client)
        token = login_token(client, account["email"], PASSWORD)
        me = client.get("/me", headers={"Authorization": f"Bearer {token}"}).json()
    jwks = JWKSClient(f"{auth_service.url}/.well-known/jwks.json")
    try:
        assert await jwks.refresh()
        verifier = TokenVerifier(jwks, issuer="gatehouse-auth", audience="gatehouse")
        identity = await verifier.verify(token)
        assert identity.subject == str(me["id"])
        assert identity.email == account["email"]
        assert identity.roles == ("user",)
        with pytest.raises(TokenError):
            await verifier.verify(_tampered_tokens(token)["payload_roles"])
    finally:
        await jwks.aclose()


def test_jwks_ignores_junk_and_refuses_writes(client: httpx.Client) -> None:
    plain = client.get("/.well-known/jwks.json").json()
    assert (
        client.get("/.well-known/jwks.json", params={"kid": "' OR 1=1", "x": "\u2603"}).json()
        == plain
    )
    for method in ("POST", "PUT", "DELETE"):
        response = client.request(method, "/.well-known/jwks.json", content=b"{}")
        assert response.status_code == 405
        assert response.json()["error"]
