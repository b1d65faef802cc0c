"""JWKSClient against a real JWKS endpoint: what it keeps, skips, and reports."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from common.jwt_factories import FakeClock, JWKSEndpoint, ed25519_key, rsa_key

from gatehouse_common.jwt import JWKSClient, TokenError
from gatehouse_common.jwt.jwks import MAX_JWKS_BYTES


async def reason_for(client: JWKSClient, kid: str | None) -> str:
    with pytest.raises(TokenError) as caught:
        await client.get_signing_key(kid)
    return caught.value.reason


async def test_snapshot_before_and_after_the_first_fetch(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    empty = jwks_client.snapshot()
    assert (empty.url, empty.key_ids, empty.fetched_at, empty.ready) == (
        jwks_server.url,
        (),
        None,
        False,
    )
    jwks_server.publish(ed25519_key("a"), rsa_key("b"))
    assert await jwks_client.refresh() is True
    state = jwks_client.snapshot()
    assert state.key_ids == ("a", "b") and state.ready
    assert state.fetched_at is not None and abs(state.fetched_at - time.time()) < 60
    assert (state.last_error, state.fetch_failures, state.consecutive_failures) == (None, 0, 0)


async def test_keys_are_looked_up_by_kid(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    jwks_server.publish(ed25519_key("a"), rsa_key("b"))
    assert (await jwks_client.get_signing_key("b")).algorithm_name == "RS256"
    assert (await jwks_client.get_signing_key("a")).key_type == "OKP"
    assert await reason_for(jwks_client, "c") == "unknown_kid"
    # two keys: a token without a kid is ambiguous
    assert await reason_for(jwks_client, None) == "unknown_kid"


async def test_a_token_without_kid_uses_the_only_key(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    jwks_server.publish(ed25519_key("only"))
    assert (await jwks_client.get_signing_key(None)).key_id == "only"


async def test_unusable_entries_are_skipped_and_the_rest_kept(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    good = ed25519_key("good").public_jwk
    jwks_server.document = {
        "keys": [
            {"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0", "alg": "HS256"},
            {**ed25519_key("enc").public_jwk, "use": "enc"},
            {k: v for k, v in ed25519_key("no-kid").public_jwk.items() if k != "kid"},
            {**ed25519_key("hs-label").public_jwk, "alg": "HS256"},
            {**ed25519_key("list-alg").public_jwk, "alg": ["EdDSA"]},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "XYZ", "kid": "alien"},
            "not an object",
            None,
            good,
        ]
    }
    assert await jwks_client.refresh() is True
    assert jwks_client.snapshot().key_ids == ("good",)


@pytest.mark.parametrize(
    ("status", "document", "error"),
    [
        (500, {"keys": []}, "HTTP 500"),
        (404, b"not found", "HTTP 404"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, {"no": "keys"}, '"keys" list'),
        (200, [1, 2, 3], '"keys" list'),
        (200, {"keys": {"a": 1}}, '"keys" list'),
        (200, {"keys": []}, "no usable signing key"),
        (200, {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}, "no usable signing key"),
        (200, b'{"keys": [' + b'"x",' * (MAX_JWKS_BYTES // 4) + b'"x"]}', "bytes"),
    ],
)
async def test_a_bad_answer_keeps_the_last_good_keys(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint, status: int, document, error: str
) -> None:
    jwks_server.publish(ed25519_key("kept"))
    assert await jwks_client.refresh() is True
    jwks_server.status, jwks_server.document = status, document
    assert await jwks_client.refresh() is False
    assert await jwks_client.refresh() is False
    state = jwks_client.snapshot()
    assert state.key_ids == ("kept",)
    assert state.last_error is not None and error in state.last_error
    assert (state.fetch_failures, state.consecutive_failures) == (2, 2)
    assert (await jwks_client.get_signing_key("kept")).key_id == "kept"


async def test_recovery_clears_the_error(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    jwks_server.status = 503
    assert await jwks_client.refresh() is False
    jwks_server.status = 200
    jwks_server.publish(ed25519_key("back"))
    assert await jwks_client.refresh() is True
    state = jwks_client.snapshot()
    assert (state.key_ids, state.last_error) == (("back",), None)
    assert (state.fetch_failures, state.consecutive_failures) == (1, 0)


async def test_a_hanging_issuer_times_out(make_jwks_client, jwks_server: JWKSEndpoint) -> None:
    jwks_server.publish(ed25519_key("slow"))
    jwks_server.delay = 1.0
    client = make_jwks_client(jwks_server.url, timeout=0.2)
    assert await client.refresh() is False
    assert "Timeout" in (client.snapshot().last_error or "")
    assert await reason_for(client, "slow") == "jwks_unavailable"


async def test_concurrent_refreshes_share_one_fetch(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    jwks_server.publish(ed25519_key("a"))
    jwks_server.delay = 0.1
    assert await asyncio.gather(*(jwks_client.refresh() for _ in range(10))) == [True] * 10
    assert jwks_server.hits == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_fetch(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint
) -> None:
    jwks_server.publish(ed25519_key("a"))
    jwks_server.delay = 0.5
    impatient = asyncio.create_task(jwks_client.get_signing_key("a"))
    patient = asyncio.create_task(jwks_client.get_signing_key("a"))
    for _ in range(500):  # until the server holds the request
        if jwks_server.hits:
            break
        await asyncio.sleep(0.01)
    impatient.cancel()
    assert (await patient).key_id == "a"
    assert impatient.cancelled()
    assert jwks_server.hits == 1


async def test_unknown_kid_refetch_is_rate_limited(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint, mono_clock: FakeClock
) -> None:
    jwks_server.publish(ed25519_key("a"))
    for _ in range(50):
        assert await reason_for(jwks_client, "invented") == "unknown_kid"
    assert jwks_server.hits == 1
    mono_clock.advance(10)
    for _ in range(50):
        assert await reason_for(jwks_client, "invented-again") == "unknown_kid"
    assert jwks_server.hits == 2


async def test_stale_keys_answer_while_a_refresh_runs_in_the_background(
    jwks_client: JWKSClient, jwks_server: JWKSEndpoint, mono_clock: FakeClock
) -> None:
    jwks_server.publish(ed25519_key("a"))
    await jwks_client.get_signing_key("a")
    jwks_server.delay = 0.2
    jwks_server.publish(ed25519_key("a"), ed25519_key("b"))
    mono_clock.advance(300)
    assert (await jwks_client.get_signing_key("a")).key_id == "a"  # no wait for the fetch
    assert jwks_client.snapshot().key_ids == ("a",)
    assert await jwks_client.refresh() is True  # joins the background fetch
    assert jwks_client.snapshot().key_ids == ("a", "b")
    assert jwks_server.hits == 2


async def test_aclose_closes_its_own_http_client(jwks_server: JWKSEndpoint) -> None:
    jwks_server.publish(ed25519_key("a"))
    client = JWKSClient(jwks_server.url)
    assert await client.refresh() is True
    await client.aclose()
    assert await client.refresh() is False
    assert "closed" in (client.snapshot().last_error or "")


async def test_aclose_leaves_a_borrowed_http_client_open(jwks_server: JWKSEndpoint) -> None:
    jwks_server.publish(ed25519_key("a"))
    async with httpx.AsyncClient() as http:
        client = JWKSClient(jwks_server.url, client=http)
        assert await client.refresh() is True
        await client.aclose()
        assert not http.is_closed
        assert (await http.get(jwks_server.url)).status_code == 200


@pytest.mark.parametrize(
    "options", [{"ttl": 0}, {"timeout": 0}, {"min_refetch_interval": -1}, {"ttl": -5}]
)
def test_nonsense_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JWKSClient("http://127.0.0.1:1/jwks.json", **options)
