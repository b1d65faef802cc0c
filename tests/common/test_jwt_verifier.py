"""TokenVerifier against a real JWKS served over HTTP, with keys made here."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest
from common.jwt_factories import (
    FakeClock,
    JWKSEndpoint,
    JWKSHost,
    SigningKey,
    b64url,
    ed25519_key,
    make_claims,
    rsa_key,
)
from cryptography.hazmat.primitives import serialization
from support.processes import free_port

from gatehouse_common.jwt import JWKSClient, TokenError, TokenVerifier, VerifiedToken


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token)
    return caught.value.reason


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64url(header)}.{b64url(claims)}.{b64url(signature)}"


async def test_valid_eddsa_token_passes(make_verifier, ed_key: SigningKey, wall_clock) -> None:
    claims = make_claims(wall_clock(), sub="7", email="ada@example.com", roles=["admin", "user"])
    verified = await make_verifier().verify(ed_key.sign(claims))
    assert verified.subject == "7"
    assert verified.email == "ada@example.com"
    assert verified.roles == ("admin", "user")
    assert verified.expires_at == claims["exp"]
    assert verified.claims["jti"] == claims["jti"]
    with pytest.raises(TypeError):
        verified.claims["sub"] = "8"  # type: ignore[index]


async def test_valid_rs256_token_passes(
    make_verifier, jwks_server: JWKSEndpoint, wall_clock
) -> None:
    ed, rs = ed25519_key("ed-1"), rsa_key("rs-1")
    jwks_server.publish(ed, rs)
    verifier = make_verifier()
    assert (await verifier.verify(rs.sign(make_claims(wall_clock(), sub="r")))).subject == "r"
    assert (await verifier.verify(ed.sign(make_claims(wall_clock(), sub="e")))).subject == "e"


async def test_token_without_email_or_roles_has_none_and_no_roles(
    make_verifier, ed_key: SigningKey, wall_clock
) -> None:
    verified = await make_verifier().verify(
        ed_key.sign(make_claims(wall_clock(), email=None, roles=None))
    )
    assert verified.email is None
    assert verified.roles == ()


async def test_expired_token_is_refused_beyond_the_leeway(
    make_verifier, ed_key: SigningKey, wall_clock: FakeClock
) -> None:
    now = wall_clock()
    verifier = make_verifier(leeway=30.0)
    assert await refused(verifier, ed_key.sign(make_claims(now - 1000, exp=int(now) - 31))) == (
        "expired"
    )
    within = await verifier.verify(ed_key.sign(make_claims(now - 1000, exp=int(now) - 20)))
    assert within.subject == "42"


async def test_token_not_valid_yet_is_refused(
    make_verifier, ed_key: SigningKey, wall_clock: FakeClock
) -> None:
    now = int(wall_clock())
    verifier = make_verifier(leeway=30.0)
    assert await refused(verifier, ed_key.sign(make_claims(now, nbf=now + 120))) == "not_yet_valid"
    assert await refused(verifier, ed_key.sign(make_claims(now, iat=now + 120))) == "not_yet_valid"
    assert (await verifier.verify(ed_key.sign(make_claims(now, nbf=now + 10)))).subject == "42"


async def test_wrong_issuer_is_refused(make_verifier, ed_key: SigningKey, wall_clock) -> None:
    token = ed_key.sign(make_claims(wall_clock(), iss="someone-else"))
    assert await refused(make_verifier(), token) == "bad_issuer"


async def test_wrong_audience_is_refused(make_verifier, ed_key: SigningKey, wall_clock) -> None:
    verifier = make_verifier()
    assert await refused(verifier, ed_key.sign(make_claims(wall_clock(), aud="other"))) == (
        "bad_audience"
    )
    listed = ed_key.sign(make_claims(wall_clock(), aud=["other", "gatehouse"]))
    assert (await verifier.verify(listed)).subject == "42"


@pytest.mark.parametrize("missing", ["exp", "iss", "aud", "sub"])
async def test_required_claims_must_be_present(
    make_verifier, ed_key: SigningKey, wall_clock, missing: str
) -> None:
    token = ed_key.sign(make_claims(wall_clock(), **{missing: None}))
    assert await refused(make_verifier(), token) == "malformed"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"nbf": "now"},
        {"sub": 42},
        {"sub": ""},
        {"email": ["a@example.com"]},
        {"roles": {"admin": True}},
        {"roles": ["user", 1]},
    ],
)
async def test_claims_of_the_wrong_type_are_malformed(
    make_verifier, ed_key: SigningKey, wall_clock, overrides: dict[str, Any]
) -> None:
    token = ed_key.sign(make_claims(wall_clock(), **overrides))
    assert await refused(make_verifier(), token) == "malformed"


async def test_alg_none_is_refused_even_when_listed(
    make_verifier, ed_key: SigningKey, wall_clock
) -> None:
    token = unsigned_token({"alg": "none", "kid": ed_key.kid}, make_claims(wall_clock()))
    assert await refused(make_verifier(), token) == "disallowed_algorithm"
    lenient = make_verifier(algorithms=("none", "EdDSA"))
    assert await refused(lenient, token) == "disallowed_algorithm"
    for spelling in ("None", "NONE"):
        other = unsigned_token({"alg": spelling, "kid": ed_key.kid}, make_claims(wall_clock()))
        assert await refused(lenient, other) == "disallowed_algorithm"


def hs256_token(secret: bytes, kid: str, claims: dict[str, Any]) -> str:
    signing_input = f"{b64url({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64url(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


async def test_hs256_signed_with_the_public_key_is_refused(
    make_verifier, jwks_server: JWKSEndpoint, wall_clock
) -> None:
    ed, rs = ed25519_key("ed-1"), rsa_key("rs-1")
    jwks_server.publish(ed, rs)
    rsa_pem = rs.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_raw = ed.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    forgeries = [
        hs256_token(rsa_pem, rs.kid, make_claims(wall_clock(), roles=["admin"])),
        hs256_token(ed_raw, ed.kid, make_claims(wall_clock(), roles=["admin"])),
        hs256_token(json.dumps(rs.public_jwk).encode(), rs.kid, make_claims(wall_clock())),
    ]
    for verifier in (make_verifier(), make_verifier(algorithms=("HS256", "RS256", "EdDSA"))):
        for token in forgeries:
            assert await refused(verifier, token) == "disallowed_algorithm"


async def test_algorithm_must_match_the_key_type(
    make_verifier, jwks_server: JWKSEndpoint, wall_clock
) -> None:
    ed, rs = ed25519_key("ed-1"), rsa_key("rs-1")
    jwks_server.publish(ed, rs)
    # signed with the RSA key but pointing at the Ed25519 kid
    mislabelled = rs.sign(make_claims(wall_clock()), kid=ed.kid)
    assert await refused(make_verifier(), mislabelled) == "disallowed_algorithm"
    # an allowed algorithm the key was not published for
    es_header = unsigned_token({"alg": "ES256", "kid": rs.kid}, make_claims(wall_clock()), b"x")
    assert await refused(make_verifier(), es_header) == "disallowed_algorithm"


def test_an_allow_list_without_asymmetric_algorithms_is_rejected(jwks_client: JWKSClient) -> None:
    for algorithms in (("none",), ("HS256", "HS512"), (), ("RS1",)):
        with pytest.raises(ValueError, match="no usable algorithm"):
            TokenVerifier(jwks_client, issuer="i", audience="a", algorithms=algorithms)


async def test_rs256_token_is_refused_when_only_eddsa_is_allowed(
    make_verifier, jwks_server: JWKSEndpoint, wall_clock
) -> None:
    rs = rsa_key("rs-1")
    jwks_server.publish(rs)
    token = rs.sign(make_claims(wall_clock()))
    assert await refused(make_verifier(algorithms=("EdDSA",)), token) == "disallowed_algorithm"


async def test_tampered_payload_is_refused(make_verifier, ed_key: SigningKey, wall_clock) -> None:
    token = ed_key.sign(make_claims(wall_clock(), roles=["user"]))
    header, _, signature = token.split(".")
    forged_payload = b64url(make_claims(wall_clock(), roles=["admin"]))
    assert await refused(make_verifier(), f"{header}.{forged_payload}.{signature}") == (
        "bad_signature"
    )


async def test_tampered_or_missing_signature_is_refused(
    make_verifier, ed_key: SigningKey, wall_clock
) -> None:
    token = ed_key.sign(make_claims(wall_clock()))
    header, payload, signature = token.split(".")
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]
    verifier = make_verifier()
    assert await refused(verifier, f"{header}.{payload}.{flipped}") == "bad_signature"
    assert await refused(verifier, f"{header}.{payload}.") == "bad_signature"
    other_key = ed25519_key(ed_key.kid)  # same kid, different key material
    assert await refused(verifier, other_key.sign(make_claims(wall_clock()))) == "bad_signature"


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage",
        "a.b.c",
        "...",
        "Bearer",
        "eyJhbGciOiJFZERTQSJ9",
        "eyJhbGciOiJFZERTQSJ9.e30",
        "\u00e9t\u00e9.\u2603.\U0001f600",
        b64url(b"[1,2]") + "." + b64url({}) + ".",
        b64url({"alg": "EdDSA", "kid": 5}) + "." + b64url({}) + ".",
        b64url(b"not json") + "." + b64url({}) + ".",
        "x" * 10_000,
    ],
)
async def test_garbage_is_malformed(make_verifier, ed_key: SigningKey, garbage: str) -> None:
    assert await refused(make_verifier(), garbage) == "malformed"


async def test_missing_token(make_verifier) -> None:
    assert await refused(make_verifier(), "") == "missing"


async def verify_then_rotate(
    verifier: TokenVerifier, jwks_server: JWKSEndpoint, mono_clock: FakeClock, wall_clock
) -> SigningKey:
    """Verify with a first key, let the refetch interval pass, publish a second key."""
    old = ed25519_key("k-old")
    jwks_server.publish(old)
    await verifier.verify(old.sign(make_claims(wall_clock())))
    assert jwks_server.hits == 1
    mono_clock.advance(11)  # past min_refetch_interval, well inside the TTL
    new = ed25519_key("k-new")
    jwks_server.publish(old, new)
    return new


async def test_unknown_kid_refetches_once_then_rotated_key_verifies(
    make_verifier, jwks_server: JWKSEndpoint, mono_clock: FakeClock, wall_clock
) -> None:
    verifier = make_verifier()
    new = await verify_then_rotate(verifier, jwks_server, mono_clock, wall_clock)
    assert (await verifier.verify(new.sign(make_claims(wall_clock(), sub="n")))).subject == "n"
    assert jwks_server.hits == 2

    stranger = ed25519_key("k-stranger")
    assert await refused(verifier, stranger.sign(make_claims(wall_clock()))) == "unknown_kid"
    assert await refused(verifier, stranger.sign(make_claims(wall_clock(), sub="x"))) == (
        "unknown_kid"
    )
    assert jwks_server.hits == 2, "an unknown kid within the interval must not refetch"

    mono_clock.advance(11)
    assert await refused(verifier, stranger.sign(make_claims(wall_clock()))) == "unknown_kid"
    assert jwks_server.hits == 3


async def test_concurrent_unknown_kids_share_one_fetch(
    make_verifier, jwks_server: JWKSEndpoint, mono_clock: FakeClock, wall_clock
) -> None:
    verifier = make_verifier()
    rotated = await verify_then_rotate(verifier, jwks_server, mono_clock, wall_clock)
    tokens = [rotated.sign(make_claims(wall_clock(), sub=str(i))) for i in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [r.subject for r in results] == [str(i) for i in range(20)]
    assert jwks_server.hits == 2


async def test_jwks_down_keeps_the_old_keys(
    make_verifier, make_jwks_client, own_jwks_host: JWKSHost, mono_clock, wall_clock
) -> None:
    key = ed25519_key("k-1")
    server = own_jwks_host.endpoint()
    server.publish(key)
    jwks = make_jwks_client(server.url)
    verifier = make_verifier(jwks)
    await verifier.verify(key.sign(make_claims(wall_clock(), sub="before")))
    own_jwks_host.stop()

    mono_clock.advance(400)  # past the TTL: a refresh is due, and fails
    assert await jwks.refresh() is False
    after = await verifier.verify(key.sign(make_claims(wall_clock(), sub="after")))
    assert after.subject == "after"
    state = jwks.snapshot()
    assert state.key_ids == ("k-1",)
    assert state.last_error is not None and "Connect" in state.last_error
    assert state.fetch_failures >= 1

    mono_clock.advance(11)
    unknown = ed25519_key("k-2").sign(make_claims(wall_clock()))
    assert await refused(verifier, unknown) == "jwks_unavailable"


async def test_no_keys_ever_fetched_is_jwks_unavailable(
    make_verifier, make_jwks_client, ed_key: SigningKey, wall_clock
) -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    verifier = make_verifier(make_jwks_client(nothing_listens))
    assert await refused(verifier, ed_key.sign(make_claims(wall_clock()))) == "jwks_unavailable"


async def test_cache_hit_returns_the_same_result(
    make_verifier, jwks_server: JWKSEndpoint, ed_key: SigningKey, wall_clock
) -> None:
    verifier = make_verifier()
    token = ed_key.sign(make_claims(wall_clock()))
    first = await verifier.verify(token)
    jwks_server.document = {"keys": []}  # a hit needs neither the key set nor the issuer
    second = await verifier.verify(token)
    assert second is first
    assert jwks_server.hits == 1
    assert isinstance(second, VerifiedToken)


async def test_cache_does_not_outlive_the_token(
    make_verifier, ed_key: SigningKey, wall_clock: FakeClock
) -> None:
    verifier = make_verifier(leeway=5.0)
    now = int(wall_clock())
    token = ed_key.sign(make_claims(now, exp=now + 60))
    first = await verifier.verify(token)
    wall_clock.advance(64)  # exp + 4 s: still inside the leeway
    assert await verifier.verify(token) is first
    wall_clock.advance(1.5)  # exp + 5.5 s: beyond it
    assert await refused(verifier, token) == "expired"
    assert await refused(verifier, token) == "expired"


async def test_cache_is_bounded(make_verifier, ed_key: SigningKey, wall_clock) -> None:
    verifier = make_verifier(cache_size=2)
    tokens = [ed_key.sign(make_claims(wall_clock(), sub=str(i))) for i in range(3)]
    first = [await verifier.verify(t) for t in tokens]
    # the oldest entry was evicted: verified again, a new (equal) result
    again = await verifier.verify(tokens[0])
    assert again == first[0] and again is not first[0]
    assert await verifier.verify(tokens[0]) is again


async def test_refusals_are_remembered_briefly(
    make_verifier, jwks_server: JWKSEndpoint, ed_key: SigningKey, wall_clock: FakeClock
) -> None:
    verifier = make_verifier(negative_ttl=10.0)
    token = ed_key.sign(make_claims(wall_clock(), aud="other"))
    assert await refused(verifier, token) == "bad_audience"
    hits = jwks_server.hits
    assert await refused(verifier, token) == "bad_audience"
    wall_clock.advance(11)
    assert await refused(verifier, token) == "bad_audience"
    assert jwks_server.hits == hits


async def test_verifier_accepts_a_token_whose_kid_rotated_in_after_ttl(
    make_verifier, jwks_client: JWKSClient, jwks_server: JWKSEndpoint, mono_clock, wall_clock
) -> None:
    old = ed25519_key("k-old")
    jwks_server.publish(old)
    verifier = make_verifier()
    await verifier.verify(old.sign(make_claims(wall_clock())))
    new = ed25519_key("k-new")
    jwks_server.publish(new)
    mono_clock.advance(301)
    # the stale set still answers for the old kid, and a background refresh starts
    await verifier.verify(old.sign(make_claims(wall_clock(), sub="stale-ok")))
    for _ in range(500):
        if jwks_client.snapshot().key_ids == ("k-new",):
            break
        await asyncio.sleep(0.01)
    assert jwks_client.snapshot().key_ids == ("k-new",)
    assert jwks_server.hits == 2
    assert (await verifier.verify(new.sign(make_claims(wall_clock(), sub="n")))).subject == "n"


async def test_a_withdrawn_key_stops_its_cached_tokens(
    make_verifier, jwks_client: JWKSClient, jwks_server: JWKSEndpoint, wall_clock
) -> None:
    kept, withdrawn = ed25519_key("k-kept"), ed25519_key("k-withdrawn")
    jwks_server.publish(kept, withdrawn)
    verifier = make_verifier()
    kept_token = kept.sign(make_claims(wall_clock()))
    withdrawn_token = withdrawn.sign(make_claims(wall_clock()))
    kept_result = await verifier.verify(kept_token)
    await verifier.verify(withdrawn_token)

    jwks_server.publish(kept)  # the issuer revokes a key
    assert await jwks_client.refresh() is True
    assert await verifier.verify(kept_token) is kept_result
    assert await refused(verifier, withdrawn_token) == "unknown_kid"
