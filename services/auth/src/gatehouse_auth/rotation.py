"""Signing key rotation: a new key on a schedule or on demand, old ones tidied away.

Every replica runs :func:`maintain` every ``keys_check_seconds``; the work
that changes the folder happens under an exclusive ``fcntl`` lock on
``<keys_dir>/.rotate.lock``, so replicas sharing the folder (one host, or a
shared volume whose filesystem honours POSIX locks, as NFSv4 does) never
rotate twice for one due date. Which key signs is not decided here: every
replica derives it from the file names and the clock (see
:mod:`gatehouse_auth.keys`), so they agree without talking to each other.

The steps, each safe to repeat:

1. rotate when due: the newest stamped key is older than the interval and no
   key is pending (``gatehouse-auth keys rotate`` does this step at once);
2. a key that stopped signing more than :data:`PRIVATE_GRACE_SECONDS` ago is
   reduced to its public half (``<name>.pub.pem``), so its private half is not
   kept a moment longer than needed;
3. a stamped key whose last token has expired is deleted.

Names without a stamp (keys an operator put there) are never changed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from gatehouse_auth.keys import KeyRing, PublicKey, generate_key
from gatehouse_auth.settings import AuthSettings, KeyAlgorithm
from gatehouse_auth.tokens import LEEWAY_SECONDS

logger = logging.getLogger(__name__)

# A replica whose clock is a little behind may sign with the old key this
# much longer; its private half stays until then.
PRIVATE_GRACE_SECONDS = 60.0
DAY_SECONDS = 86_400.0


@dataclass
class Maintenance:
    """What one :func:`maintain` pass did (file names)."""

    created: list[str] = field(default_factory=list)
    reduced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.reduced or self.deleted)


@contextmanager
def rotation_lock(keys_dir: Path) -> Iterator[None]:
    """One rotation at a time over every process sharing ``keys_dir``."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    with (keys_dir / ".rotate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ring_for(settings: AuthSettings, *, generate: bool | None = None) -> KeyRing:
    """The key ring ``settings`` describe (the app's and the CLI's are the same)."""
    return KeyRing.from_folder(
        settings.keys_dir,
        generate=settings.should_generate_keys if generate is None else generate,
        algorithm=settings.key_algorithm,
        publish_ahead=settings.key_publish_ahead_seconds,
        retain_after=retention_seconds(settings),
    )


def retention_seconds(settings: AuthSettings) -> float:
    """How long a key stays published after it stopped signing: its last token's life."""
    return float(settings.token_ttl_seconds + LEEWAY_SECONDS)


def rotation_due(ring: KeyRing, interval_seconds: float, now: float) -> bool:
    """A rotation is due when no key is pending and the newest stamped one is old enough."""
    if interval_seconds <= 0:
        return False
    stages = ring.stages(now)
    if any(s.stage == "pending" for s in stages):
        return False
    stamps = [s.key.stamp for s in stages if s.key.private is not None and s.key.stamp]
    return not stamps or now - max(stamps) >= interval_seconds


def rotate_now(keys_dir: Path, algorithm: KeyAlgorithm) -> Path:
    """Add a new (pending) key; the caller holds :func:`rotation_lock`."""
    path = generate_key(keys_dir, algorithm)
    logger.warning("signing key rotation: new key %s published, pending", path.name)
    return path


def _write_public(path: Path, public: PublicKey) -> None:
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(pem)
    os.replace(partial, path)


def tidy(ring: KeyRing, keys_dir: Path, now: float) -> Maintenance:
    """Steps 2 and 3 of the module's docstring; the caller holds the lock."""
    done = Maintenance()
    for staged in ring.stages(now):
        key = staged.key
        path = keys_dir / key.source
        if key.stamp is None or staged.stage == "signing" or staged.published_until is None:
            continue
        if staged.stage == "expired":
            path.unlink(missing_ok=True)
            done.deleted.append(key.source)
            continue
        stopped = staged.published_until - ring.retain_after
        if key.private is not None and now - stopped >= PRIVATE_GRACE_SECONDS:
            public_path = path.with_name(path.name.removesuffix(".pem") + ".pub.pem")
            _write_public(public_path, key.public)
            path.unlink(missing_ok=True)
            done.reduced.append(key.source)
    return done


def maintain(ring: KeyRing, settings: AuthSettings, *, force: bool = False) -> Maintenance:
    """Rotate if due (or ``force``, unless a key is pending), tidy, and reload ``ring``.

    See the module's docstring.
    """
    keys_dir = settings.keys_dir
    done = Maintenance()
    with rotation_lock(keys_dir):
        ring.reload()
        now = time.time()
        interval = settings.key_rotation_interval_days * DAY_SECONDS
        pending = any(s.stage == "pending" for s in ring.stages(now))
        # A rotation under way is not started again (two CLI runs, a schedule).
        if (force and not pending) or rotation_due(ring, interval, now):
            done.created.append(rotate_now(keys_dir, settings.key_algorithm).name)
            ring.reload()
        tidied = tidy(ring, keys_dir, now)
        done.reduced, done.deleted = tidied.reduced, tidied.deleted
        if tidied.changed:
            ring.reload()
    for name in done.reduced:
        logger.info("retired key %s reduced to its public half", name)
    for name in done.deleted:
        logger.info("retired key %s removed: the last token it signed has expired", name)
    return done
