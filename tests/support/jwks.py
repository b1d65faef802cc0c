"""A signing key and its JWKS served over real HTTP: the tokens auth would issue.

It also takes ``POST /audit`` as auth does (the records the gateway's operator
API sends): each is kept in :attr:`KeyServer.audit` with its Authorization
header; ``audit_status`` is the answer, and ``audit_gate``, while cleared,
holds the answer back (an audit log that hangs).

The ``keys`` fixture (tests/conftest.py) serves one per module; a test that
takes the key server away (an auth outage) starts its own :class:`KeyServer`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from support.processes import free_port

KID = "test-key-1"
ISSUER = "gatehouse-auth"
AUDIENCE = "gatehouse"


class KeyServer:
    """A signing key and a JWKS document served from a thread on a free port."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        public = jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**public, "kid": KID, "alg": "EdDSA", "use": "sig"}]}
        self.audit: list[tuple[str | None, Any]] = []
        self.audit_status = 201
        self.audit_gate = threading.Event()
        self.audit_gate.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                record = json.loads(self.rfile.read(length) or b"null")
                server.audit_gate.wait(timeout=30)
                if self.path == "/audit":
                    server.audit.append((self.headers.get("Authorization"), record))
                    status = server.audit_status
                else:
                    status = 404
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base_url}/.well-known/jwks.json"

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
        self.audit_gate.set()
        self.server.shutdown()
        self.server.server_close()
