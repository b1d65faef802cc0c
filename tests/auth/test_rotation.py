"""Signing key rotation: stages by time, tidying, the schedule, replicas, and the CLI."""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from support.auth import auth_env, run_cli

from gatehouse_auth.keys import STAMP_FORMAT, KeyRing, stamp_of
from gatehouse_auth.rotation import PRIVATE_GRACE_SECONDS, maintain, rotation_due, tidy
from gatehouse_auth.settings import AuthSettings

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
AHEAD = 50.0
RETAIN = 200.0


def _key_at(keys_dir: Path, moment: float, name: str = "eddsa") -> Path:
    stamp = datetime.fromtimestamp(moment, UTC).strftime(STAMP_FORMAT)
    return _private(keys_dir / f"{stamp}-{name}.pem")


def _private(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _ring(keys_dir: Path) -> KeyRing:
    return KeyRing.from_folder(keys_dir, publish_ahead=AHEAD, retain_after=RETAIN)


def _stages(ring: KeyRing, now: float) -> list[str]:
    return [s.stage for s in ring.stages(now)]


@pytest.mark.unit
def test_stamps_are_read_from_names() -> None:
    assert stamp_of("20261201T120000000000Z-eddsa.pem") == T0
    assert stamp_of("20261201T120000500000Z-eddsa.pub.pem") == T0 + 0.5
    assert stamp_of("20261201T120000Z-rs256.pem") == T0
    assert stamp_of("signing.pem") is None
    assert stamp_of("20261399T120000Z-bad-month.pem") is None


@pytest.mark.unit
def test_a_new_key_is_published_before_it_signs_and_the_old_one_kept_until_its_tokens_expire(
    tmp_path: Path,
) -> None:
    _key_at(tmp_path, T0)
    _key_at(tmp_path, T0 + 1000)
    ring = _ring(tmp_path)
    old, new = ring.keys

    # pending: published, the old key still signs
    now = T0 + 1000 + AHEAD - 1
    assert _stages(ring, now) == ["signing", "pending"]
    assert [k.kid for k in ring.published(now)] == [old.kid, new.kid]

    # active: the new key signs, the old one verifies for RETAIN more seconds
    now = T0 + 1000 + AHEAD
    assert _stages(ring, now) == ["verifying", "signing"]
    assert ring.stages(now)[0].published_until == now + RETAIN
    assert _stages(ring, now + RETAIN - 1) == ["verifying", "signing"]

    # gone: out of the JWKS and no longer verifying
    assert _stages(ring, now + RETAIN) == ["expired", "signing"]
    assert [k.kid for k in ring.published(now + RETAIN)] == [new.kid]


@pytest.mark.unit
def test_the_first_key_signs_at_once_even_while_pending(tmp_path: Path) -> None:
    _key_at(tmp_path, T0)
    ring = _ring(tmp_path)
    assert _stages(ring, T0) == ["signing"]


@pytest.mark.unit
def test_keys_without_a_stamp_sign_at_once_and_are_never_dropped(tmp_path: Path) -> None:
    _key_at(tmp_path, T0)
    _key_at(tmp_path, T0 + 1)
    _private(tmp_path / "zz-operator.pem")
    ring = _ring(tmp_path)
    far = T0 + 10 * RETAIN
    # the unstamped key sorts last and signs; the keys it replaced at an unknown
    # time stay published, as before rotation existed
    assert _stages(ring, far) == ["verifying", "verifying", "signing"]


@pytest.mark.unit
def test_replicas_reading_one_folder_agree_on_the_signer(tmp_path: Path) -> None:
    _key_at(tmp_path, T0)
    _key_at(tmp_path, T0 + 1000)
    first, second = _ring(tmp_path), _ring(tmp_path)
    for now in (T0 + 1000, T0 + 1000 + AHEAD - 0.001, T0 + 1000 + AHEAD, T0 + 5000):
        a = [s.key.kid for s in first.stages(now) if s.stage == "signing"]
        b = [s.key.kid for s in second.stages(now) if s.stage == "signing"]
        assert a == b and len(a) == 1


@pytest.mark.unit
def test_tidy_reduces_a_retired_key_to_its_public_half_then_deletes_it(tmp_path: Path) -> None:
    old = _key_at(tmp_path, T0)
    _key_at(tmp_path, T0 + 1000)
    ring = _ring(tmp_path)
    old_kid = ring.keys[0].kid
    switched = T0 + 1000 + AHEAD

    # within the grace a lagging replica may still sign with it: untouched
    assert not tidy(ring, tmp_path, switched + PRIVATE_GRACE_SECONDS - 1).changed
    done = tidy(ring, tmp_path, switched + PRIVATE_GRACE_SECONDS)
    assert done.reduced == [old.name] and not old.exists()
    public = old.with_name(old.name.removesuffix(".pem") + ".pub.pem")
    assert b"PRIVATE" not in public.read_bytes()
    assert ring.reload()
    retired = ring.stages(switched + PRIVATE_GRACE_SECONDS)[0]
    assert (retired.key.kid, retired.stage) == (old_kid, "verifying")
    assert retired.key.private is None

    done = tidy(ring, tmp_path, switched + RETAIN)
    assert done.deleted == [public.name] and not public.exists()


@pytest.mark.unit
def test_a_rotation_is_due_after_the_interval_unless_one_is_pending(tmp_path: Path) -> None:
    _key_at(tmp_path, T0)
    ring = _ring(tmp_path)
    assert not rotation_due(ring, 0, T0 + 10**9)  # 0: no schedule
    assert not rotation_due(ring, 3600, T0 + 3599)
    assert rotation_due(ring, 3600, T0 + 3600)
    _key_at(tmp_path, T0 + 3600)
    ring.reload()
    assert not rotation_due(ring, 3600, T0 + 3600 + 1)  # pending: already under way


@pytest.mark.unit
def test_replicas_maintaining_at_once_add_one_key(tmp_path: Path) -> None:
    settings = AuthSettings(
        keys_dir=tmp_path,
        key_rotation_interval_days=1,
        key_publish_ahead_seconds=AHEAD,
        generate_keys=True,
    )
    # an old key, so a rotation is due
    _key_at(tmp_path, T0 - 2 * 86_400)
    rings = [_ring(tmp_path) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda ring: maintain(ring, settings), rings))
    assert sum(len(r.created) for r in results) == 1
    assert len(list(tmp_path.glob("*.pem"))) == 2
    assert all(len(ring.keys) == 2 for ring in rings)


@pytest.mark.unit
def test_reload_keeps_the_loaded_keys_when_the_folder_breaks(tmp_path: Path) -> None:
    _key_at(tmp_path, T0)
    ring = _ring(tmp_path)
    kid = ring.signing_key.kid
    assert not ring.reload()  # nothing changed
    (tmp_path / "half-copied.pem").write_text("-----BEGIN PRIVATE KEY-----\ntrunc")
    assert not ring.reload()
    assert ring.signing_key.kid == kid


def test_cli_rotate_adds_a_pending_key_once(tmp_path: Path) -> None:
    env = auth_env(tmp_path, database_url=None, redis_prefix=None)
    first = run_cli(env, "keys", "rotate")
    assert first.stdout.count("signing") == 1 and "pending" not in first.stdout
    second = run_cli(env, "keys", "rotate")
    assert "new key" in second.stdout and "pending" in second.stdout
    third = run_cli(env, "keys", "rotate")
    assert "already pending" in third.stdout
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 2
    listed = run_cli(env, "keys", "list")
    assert listed.stdout.count("\n") == 3  # header + two keys
