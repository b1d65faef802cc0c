"""A signing key of the benchmark's own, its JWKS, and a token the gateway will accept.

The production scenario needs a real token verified against a real JWKS over
HTTP. The harness makes an Ed25519 key (the auth service's default algorithm),
serves the public half from the backend nginx, and signs one token with the
claims the auth service issues, so the gateway does exactly the work it does
in production without the benchmark depending on the auth service's database.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

ISSUER = "gatehouse-auth"
AUDIENCE = "gatehouse"


@dataclass(frozen=True)
class BenchKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> BenchKey:
        return cls(kid=f"bench-{uuid.uuid4().hex[:8]}", private_key=Ed25519PrivateKey.generate())

    def jwks(self) -> dict[str, object]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": [jwk]}

    def jwks_json(self) -> str:
        return json.dumps(self.jwks(), separators=(",", ":"))

    def token(self, *, lifetime_s: int = 3600, roles: tuple[str, ...] = ("user",)) -> str:
        """A token shaped like the auth service's, valid for ``lifetime_s`` seconds."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "1",
            "email": "bench@example.com",
            "roles": list(roles),
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})
