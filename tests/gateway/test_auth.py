"""JWT on routes with ``auth: required``: keys made here, a JWKS served over real HTTP.

One test also runs the real auth service behind the gateway: sign up and log
in through the gateway, then call a protected route with the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import AUDIENCE, ISSUER, KID, KeyServer
from support.processes import ServiceProcess


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, keys: KeyServer, backend_pool: list[ServiceProcess]
) -> GatewayProcess:
    backend = backend_pool[0]
    document = {
        "auth": {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5},
        "routes": [gateway_route([backend], auth="required")],
    }
    return module_launcher.gateway(document)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_token_passes_with_identity_headers(gateway: GatewayProcess, keys: KeyServer) -> None:
    token = keys.token()
    with gateway.client() as client:
        for authorization in [f"Bearer {token}", f"bearer {token}", token]:
            response = client.get(
                "/me",
                headers={
                    "Authorization": authorization,
                    "X-Auth-Subject": "forged",
                    "X-Auth-Roles": "admin",
                },
            )
            assert response.status_code == 200, response.text
            headers = response.json()["headers"]
            assert headers["x-auth-subject"] == "42"
            assert headers["x-auth-email"] == "ada@example.com"
            assert headers["x-auth-roles"] == "user"


def _hs256_with_public_key(keys: KeyServer) -> str:
    """The algorithm-confusion attack: HMAC keyed with the published public key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    claims = jwt.decode(keys.token(), options={"verify_signature": False})
    payload = _b64(json.dumps(claims).encode())
    public_pem = keys.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _alg_none(keys: KeyServer) -> str:
    claims = jwt.decode(keys.token(), options={"verify_signature": False})
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered(keys: KeyServer) -> str:
    header, _payload, signature = keys.token().split(".")
    claims = jwt.decode(keys.token(), options={"verify_signature": False})
    claims["roles"] = ["admin"]
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


BAD_TOKENS = {
    "expired": lambda k: k.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    "not_yet_valid": lambda k: k.token(nbf=int(time.time()) + 3600),
    "bad_issuer": lambda k: k.token(iss="someone-else"),
    "bad_audience": lambda k: k.token(aud="another-service"),
    "alg_none": _alg_none,
    "hs256_public_key": _hs256_with_public_key,
    "unknown_kid": lambda k: k.token(key=Ed25519PrivateKey.generate(), kid="rotated-out"),
    "tampered": _tampered,
    "garbage": lambda k: "not-a-jwt-at-all",
    "three_garbage_parts": lambda k: "a.b.c",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_get_401(gateway: GatewayProcess, keys: KeyServer, case: str) -> None:
    token = BAD_TOKENS[case](keys)
    with gateway.client() as client:
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"] == "unauthorized" and body["reason"]
    assert token not in response.text


def test_missing_or_odd_authorization_header_gets_401(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        for headers in [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}]:
            response = client.get("/me", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
    metrics = gateway.metrics()
    assert metric_value(metrics, "gateway_auth_failures_total", reason="missing") >= 3
    assert metric_value(metrics, "http_requests_total", handler="app", status="401") >= 3


def test_through_the_real_auth_service(
    launcher: Launcher, backends: list[ServiceProcess], tmp_path: Path
) -> None:
    from support.auth import auth_env, launch

    data_dir = tmp_path / "auth"
    auth = launch(data_dir, "gateway", auth_env(data_dir, database_url=None, redis_prefix=None))
    try:
        backend = backends[0]
        document = {
            "auth": {"jwks_url": auth.url + "/.well-known/jwks.json"},
            "routes": [
                gateway_route([backend], name="service1", auth="required"),
                {
                    "name": "auth",
                    "path_prefix": ["/account", "/login", "/.well-known/"],
                    "backends": [{"url": auth.url}],
                },
            ],
        }
        gateway = launcher.gateway(document)
        account = {"username": "gw-user", "email": "gw-user@example.com", "password": "pw-for-gw-1"}
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            created = client.post("/account", json=account)
            assert created.status_code == 201, created.text
            login = client.post(
                "/login", json={"email": account["email"], "password": account["password"]}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            response = client.get("/x", headers={"Host": HOST, "Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            assert response.json()["headers"]["x-auth-subject"] == str(created.json()["id"])
            assert response.json()["headers"]["x-auth-email"] == account["email"]
            refused = client.get("/x", headers={"Host": HOST, "Authorization": "Bearer x.y.z"})
            assert refused.status_code == 401
    finally:
        auth.process.stop()


def test_rotated_key_is_fetched_and_keys_survive_an_auth_outage(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    keys = KeyServer()
    try:
        document = {
            "auth": {"jwks_url": keys.url, "jwks_min_refresh_interval": 0},
            "routes": [gateway_route(backends[:1], auth="required")],
        }
        gateway = launcher.gateway(document)
        with gateway.client() as client:
            assert client.get("/", headers={"Authorization": keys.token()}).status_code == 200
            rotated = keys.add_key("test-key-2")
            fresh = keys.token(key=rotated, kid="test-key-2")
            assert client.get("/", headers={"Authorization": fresh}).status_code == 200
            keys.close()  # the auth service goes away; the gateway keeps its keys
            for kid, key in [(KID, keys.key), ("test-key-2", rotated)]:
                token = keys.token(key=key, kid=kid, jti=f"after-outage-{kid}")
                assert client.get("/", headers={"Authorization": token}).status_code == 200
            unknown = keys.token(key=Ed25519PrivateKey.generate(), kid="never-published")
            refused = client.get("/", headers={"Authorization": unknown})
            assert refused.status_code == 401
    finally:
        keys.close()
