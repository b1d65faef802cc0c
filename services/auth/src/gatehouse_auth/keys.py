"""The key ring: private keys that sign tokens and the public keys that verify them.

Keys are PEM files in one folder (``GATEHOUSE_AUTH_KEYS_DIR``), which may be a
Kubernetes secret mount. Files are ordered by name and the last private key
signs, so a rotation is "add a file whose name sorts last, restart": tokens
signed with the older keys keep verifying as long as their files stay, and a
retired key can be reduced to its public half (``*.pub.pem`` or any PEM
holding only a public key) so it is published but never signs again. Secret
mounts give every file the same mtime, which is why names, not times, decide.

In development a folder without keys gets a new Ed25519 key on first start,
written with mode 0600 and kept, so tokens survive restarts.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from gatehouse_auth.settings import KeyAlgorithm

logger = logging.getLogger(__name__)

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey
RSA_MIN_BITS = 2048


class KeyRingError(Exception):
    """A key file that cannot be used (wrong type, unreadable, too weak)."""


@dataclass(frozen=True)
class Key:
    """One key of the ring; ``private`` is None for a published-only (retired) key."""

    kid: str
    algorithm: KeyAlgorithm
    public: PublicKey
    private: PrivateKey | None
    source: str

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use``."""
        if isinstance(self.public, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(self.public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(public: PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that is the same wherever the key is loaded."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    else:
        numbers = public.public_numbers()
        members = {
            "e": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def _algorithm_of(public: PublicKey, source: str) -> KeyAlgorithm:
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < RSA_MIN_BITS:
            raise KeyRingError(f"{source}: RSA key of {public.key_size} bits; use {RSA_MIN_BITS}+")
        return "RS256"
    raise KeyRingError(f"{source}: only Ed25519 and RSA keys are supported")


def load_key(path: Path) -> Key:
    """One PEM file: a private key (signs and is published) or a public key (published)."""
    data = path.read_bytes()
    private: Any = None
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        public: Any = private.public_key()
    else:
        public = serialization.load_pem_public_key(data)
    algorithm = _algorithm_of(public, path.name)
    return Key(
        kid=thumbprint(public),
        algorithm=algorithm,
        public=public,
        private=private,
        source=path.name,
    )


def generate_key(keys_dir: Path, algorithm: KeyAlgorithm = "EdDSA") -> Path:
    """Write a new private key into ``keys_dir`` under a name that sorts after older ones."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    private: PrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "EdDSA"
        else rsa.generate_private_key(public_exponent=65537, key_size=3072)
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = keys_dir / f"{stamp}-{algorithm.lower()}.pem"
    # Written under a name no reader looks at, then linked into place: a
    # process listing the folder meanwhile sees the whole key or none of it,
    # and link() refuses to replace an existing key.
    partial = keys_dir / f".{stamp}.{os.getpid()}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


class KeyRing:
    """Every key loaded from the folder; the newest private key signs."""

    def __init__(self, keys: list[Key]) -> None:
        signers = [k for k in keys if k.private is not None]
        if not signers:
            raise KeyRingError("no private key to sign with")
        self.keys = keys
        self.signing_key = signers[-1]
        self._by_kid = {k.kid: k for k in keys}

    @classmethod
    def from_folder(
        cls, keys_dir: Path, *, generate: bool = False, algorithm: KeyAlgorithm = "EdDSA"
    ) -> KeyRing:
        paths = sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []
        if not paths and generate:
            keys_dir.mkdir(parents=True, exist_ok=True)
            # Workers starting together take turns, so only the first generates.
            with (keys_dir / ".generate.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not any(keys_dir.glob("*.pem")):
                    created = generate_key(keys_dir, algorithm)
                    logger.warning(
                        "generated a new %s signing key %s (development)", algorithm, created
                    )
            paths = sorted(keys_dir.glob("*.pem"))
        if not paths:
            raise KeyRingError(
                f"no *.pem keys in {keys_dir}; add one or set GATEHOUSE_AUTH_GENERATE_KEYS=true"
            )
        ring = cls([load_key(p) for p in paths])
        logger.info(
            "key ring loaded: %d key(s), signing with %s (%s)",
            len(ring.keys),
            ring.signing_key.kid,
            ring.signing_key.source,
        )
        return ring

    def get(self, kid: str) -> Key | None:
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Every published key, newest first, deduplicated by kid."""
        seen: dict[str, dict[str, Any]] = {}
        for key in reversed(self.keys):
            seen.setdefault(key.kid, key.jwk())
        return {"keys": list(seen.values())}
