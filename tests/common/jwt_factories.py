"""Test data for the JWT tests: signing keys, claims, a JWKS server over real HTTP, clocks.

The JWKS server is a small Starlette app served by uvicorn in a background
thread on a free port: the client under test makes real HTTP requests, and a
test can change the published keys, count fetches, or stop the server to play
"auth is down".
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.processes import free_port

ISSUER = "gatehouse-auth"
AUDIENCE = "gatehouse"


class FakeClock:
    """A clock the test moves by hand, so expiry is tested without sleeping."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SigningKey:
    """A private key with its kid and algorithm, and its public half as a JWK."""

    kid: str
    alg: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = OKPAlgorithm if self.alg == "EdDSA" else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )


_RSA_PRIVATE: list[rsa.RSAPrivateKey] = []


def ed25519_key(kid: str) -> SigningKey:
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


def rsa_key(kid: str) -> SigningKey:
    # RSA generation is slow; one key material serves every RSA kid in the run.
    if not _RSA_PRIVATE:
        _RSA_PRIVATE.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return SigningKey(kid, "RS256", _RSA_PRIVATE[0])


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults) for every HTTP client the tests make."""
    return httpx.create_ssl_context()


def b64url(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_claims(now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """Claims as the auth service issues them; ``None`` in overrides drops a claim."""
    now = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "42",
        "email": "ada@example.com",
        "roles": ["user"],
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 900,
        "jti": f"jti-{time.perf_counter_ns()}",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@dataclass
class JWKSEndpoint:
    """One JWKS document on a :class:`JWKSHost`, which the test controls."""

    base_url: str
    name: str
    # What the endpoint serves: a JSON document (normally {"keys": [...]}) or
    # raw bytes, and with which status.
    document: Any = field(default_factory=lambda: {"keys": []})
    status: int = 200
    # seconds to wait before answering (a slow or hanging issuer)
    delay: float = 0.0
    hits: int = 0

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.name}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey) -> None:
        self.document = {"keys": [k.public_jwk for k in keys]}

    async def respond(self) -> Response:
        self.hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(self.document, bytes):
            return Response(self.document, self.status, media_type="application/json")
        return JSONResponse(self.document, self.status)


class JWKSHost:
    """uvicorn in a background thread on a free port, serving any number of endpoints.

    One host serves a whole test session (starting and stopping uvicorn costs
    a fifth of a second); a test that needs the server to go away starts a
    host of its own and stops it.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.endpoints: dict[str, JWKSEndpoint] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def endpoint(self) -> JWKSEndpoint:
        endpoint = JWKSEndpoint(self.base_url, f"jwks-{len(self.endpoints)}")
        self.endpoints[endpoint.name] = endpoint
        return endpoint

    async def _jwks(self, request: Request) -> Response:
        endpoint = self.endpoints.get(request.path_params["name"])
        return await endpoint.respond() if endpoint else Response(status_code=404)

    def start(self) -> JWKSHost:
        app = Starlette(routes=[Route("/{name}/.well-known/jwks.json", self._jwks)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"JWKS host did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None
