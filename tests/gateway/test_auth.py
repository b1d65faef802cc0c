"""JWT on routes with ``auth: required``: keys made here, a JWKS served over real HTTP.

One test also runs the real auth service behind the gateway: sign up and log
in through the gateway, then call a protected route with the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway.helpers import HOST, GatewayProcess, Launcher, gateway_route, metric_value
from support.processes import ServiceProcess, free_port

KID = "test-key-1"
ISSUER = "gatehouse-auth"
AUDIENCE = "gatehouse"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class KeyServer:
    """A signing key and a JWKS document served from a thread on a free port."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        public = jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**public, "kid": KID, "alg": "EdDSA", "use": "sig"}]}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def token(self, key: Ed25519PrivateKey | None = None, kid: str = KID, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "42",
            "email": "ada@example.com",
            "roles": ["user"],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm="EdDSA", headers={"kid": kid})

    def add_key(self, kid: str) -> Ed25519PrivateKey:
        """Publish one more key (a rotation) and return it for signing."""
        key = Ed25519PrivateKey.generate()
        public = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.jwks = {"keys": [*self.jwks["keys"], {**public, "kid": kid, "alg": "EdDSA"}]}
        return key

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


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
    from auth.factories import auth_env, launch

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
