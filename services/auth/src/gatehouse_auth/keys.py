"""The key ring: private keys that sign tokens and the public keys that verify them.

Keys are PEM files in one folder (``GATEHOUSE_AUTH_KEYS_DIR``), which may be a
Kubernetes secret mount. Files are ordered by name, and the last private key
that is not *pending* signs. A key whose name starts with a UTC time stamp
(``20261201T170000123456Z-eddsa.pem``, as :func:`generate_key` and
``gatehouse-auth keys rotate`` write them) is pending until ``publish_ahead``
seconds after that time: it is published in the JWKS first, so every verifier
caching the set has it before a token signed with it arrives. Names without a
stamp sign at once, as before. Secret mounts give every file the same mtime,
which is why names, not times, decide.

A key stops signing when a later key becomes active; it stays published (and
verifying) ``retain_after`` seconds more, the life of the last token it
signed plus the leeway verifiers allow, and then leaves the JWKS. A key can be
reduced to its public half (``*.pub.pem`` or any PEM holding only a public
key) so it is published but never signs again; :mod:`gatehouse_auth.rotation`
does that and deletes keys whose time is over.

The ring rereads the folder with :meth:`KeyRing.reload`, so keys that another
replica or the CLI added are picked up without a restart.

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
import re
import threading
import time
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
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP = re.compile(r"^(\d{8}T\d{6})(\d{0,6})Z-")


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
    # The UTC time in the file name (unix seconds); None for a name without one.
    stamp: float | None = None

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


def stamp_of(name: str) -> float | None:
    """The UTC time a key's file name starts with (unix seconds), or None."""
    match = _STAMP.match(name)
    if match is None:
        return None
    try:
        moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    fraction = match.group(2)
    return moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


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
        stamp=stamp_of(path.name),
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
    stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
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


@dataclass(frozen=True)
class KeyStage:
    """Where one key is at a moment: pending, signing, verifying only, or gone."""

    key: Key
    stage: str  # "pending" | "signing" | "verifying" | "expired"
    signs_from: float | None  # when it starts (or started) signing; None: at once
    published_until: float | None  # when it leaves the JWKS; None: not scheduled


class KeyRing:
    """Every key loaded from the folder, staged by time (see the module's docstring).

    ``publish_ahead`` and ``retain_after`` are seconds; the defaults (0 and
    forever) are the ring before rotation existed: the last key signs at once
    and every key stays published.
    """

    def __init__(
        self,
        keys: list[Key],
        *,
        publish_ahead: float = 0.0,
        retain_after: float = float("inf"),
        keys_dir: Path | None = None,
    ) -> None:
        if not any(k.private is not None for k in keys):
            raise KeyRingError("no private key to sign with")
        self.publish_ahead = publish_ahead
        self.retain_after = retain_after
        self.keys_dir = keys_dir
        self.keys = keys
        self._seen: tuple[tuple[str, int, int], ...] = ()
        self._reload_lock = threading.Lock()

    @classmethod
    def from_folder(
        cls,
        keys_dir: Path,
        *,
        generate: bool = False,
        algorithm: KeyAlgorithm = "EdDSA",
        publish_ahead: float = 0.0,
        retain_after: float = float("inf"),
    ) -> KeyRing:
        paths = _key_paths(keys_dir)
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
            paths = _key_paths(keys_dir)
        if not paths:
            raise KeyRingError(
                f"no *.pem keys in {keys_dir}; add one or set GATEHOUSE_AUTH_GENERATE_KEYS=true"
            )
        ring = cls(
            [load_key(p) for p in paths],
            publish_ahead=publish_ahead,
            retain_after=retain_after,
            keys_dir=keys_dir,
        )
        ring._seen = _listing(paths)
        signer = ring.signing_key
        logger.info(
            "key ring loaded: %d key(s), signing with %s (%s)",
            len(ring.keys),
            signer.kid,
            signer.source,
        )
        return ring

    def reload(self) -> bool:
        """Reread the folder if its files changed; True when the ring changed.

        A folder that cannot be used now (no private key, a bad file) keeps
        the keys already loaded: a half-copied secret must not stop signing.
        """
        if self.keys_dir is None:
            return False
        with self._reload_lock:
            paths = _key_paths(self.keys_dir)
            listing = _listing(paths)
            if listing == self._seen:
                return False
            try:
                keys = [load_key(p) for p in paths]
            except (OSError, ValueError, KeyRingError) as exc:
                logger.error("keys folder not reloaded, keeping the loaded keys: %s", exc)
                return False
            if not any(k.private is not None for k in keys):
                logger.error("keys folder holds no private key; keeping the loaded keys")
                return False
            self.keys = keys
            self._seen = listing
        logger.info("key ring reloaded: %s", ", ".join(k.source for k in keys))
        return True

    def stages(self, now: float | None = None) -> list[KeyStage]:
        """Every key (in name order) with its stage at ``now``."""
        now = time.time() if now is None else now
        keys = self.keys
        signs_from = [None if k.stamp is None else k.stamp + self.publish_ahead for k in keys]
        signer = self._signer_index(keys, signs_from, now)
        staged: list[KeyStage] = []
        for index, key in enumerate(keys):
            # Superseded when a later signing-capable key became active; a
            # successor without a stamp started at an unknown time, so the
            # key is then kept (as before rotation existed).
            successors = [
                signs_from[j]
                for j in range(index + 1, len(keys))
                if keys[j].private is not None and _started(signs_from[j], now)
            ]
            until: float | None = None
            if successors and all(t is not None for t in successors) and index != signer:
                until = min(t for t in successors if t is not None) + self.retain_after
            if index == signer:
                stage = "signing"
            elif key.private is not None and not _started(signs_from[index], now):
                stage = "pending"
            elif until is not None and until <= now:
                stage = "expired"
            else:
                stage = "verifying"
            staged.append(KeyStage(key, stage, signs_from[index], until))
        return staged

    @staticmethod
    def _signer_index(keys: list[Key], signs_from: list[float | None], now: float) -> int:
        """The last private key already active; else the oldest pending one (nothing else can)."""
        private = [i for i, k in enumerate(keys) if k.private is not None]
        active = [i for i in private if _started(signs_from[i], now)]
        return active[-1] if active else private[0]

    @property
    def signing_key(self) -> Key:
        """The key that signs now."""
        keys = self.keys
        signs_from = [None if k.stamp is None else k.stamp + self.publish_ahead for k in keys]
        return keys[self._signer_index(keys, signs_from, time.time())]

    def published(self, now: float | None = None) -> list[Key]:
        """The keys verifiers may use now, in name order (expired ones left out)."""
        return [s.key for s in self.stages(now) if s.stage != "expired"]

    def get(self, kid: str) -> Key | None:
        for key in self.published():
            if key.kid == kid:
                return key
        return None

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Every published key, newest first, deduplicated by kid."""
        seen: dict[str, dict[str, Any]] = {}
        for key in reversed(self.published()):
            seen.setdefault(key.kid, key.jwk())
        return {"keys": list(seen.values())}


def _started(signs_from: float | None, now: float) -> bool:
    return signs_from is None or signs_from <= now


def _key_paths(keys_dir: Path) -> list[Path]:
    return sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []


def _listing(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """What tells a changed folder: names, sizes and change times."""
    listing = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        listing.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(listing)
