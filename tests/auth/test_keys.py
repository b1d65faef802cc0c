"""The key ring: loading, ordering, generation, and a rotation against the real service."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from support.auth import PASSWORD, StartAuth, login_token, signup

from gatehouse_auth.keys import KeyRing, KeyRingError, generate_key, load_key, thumbprint


def _write_private(path: Path, key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_public(path: Path, key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.unit
def test_newest_name_signs_and_every_key_is_published(tmp_path: Path) -> None:
    old = ed25519.Ed25519PrivateKey.generate()
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    retired = ed25519.Ed25519PrivateKey.generate()
    _write_public(tmp_path / "2024-01-retired.pub.pem", retired)
    _write_private(tmp_path / "2025-01-old.pem", old)
    _write_private(tmp_path / "2026-01-new.pem", new)
    ring = KeyRing.from_folder(tmp_path)
    assert ring.signing_key.algorithm == "RS256"
    assert ring.signing_key.kid == thumbprint(new.public_key())
    jwks = ring.jwks()["keys"]
    assert [k["kid"] for k in jwks] == [
        thumbprint(new.public_key()),
        thumbprint(old.public_key()),
        thumbprint(retired.public_key()),
    ]
    assert {k["alg"] for k in jwks} == {"RS256", "EdDSA"}
    assert all(k["use"] == "sig" and "d" not in k for k in jwks)


@pytest.mark.unit
def test_jwks_entries_are_usable_by_pyjwt(tmp_path: Path) -> None:
    _write_private(
        tmp_path / "a.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ring = KeyRing.from_folder(tmp_path)
    key = ring.signing_key
    token = jwt.encode({"sub": "1"}, key.private, algorithm="RS256", headers={"kid": key.kid})
    jwk = jwt.PyJWKSet.from_dict(ring.jwks())[key.kid]
    assert jwt.decode(token, jwk.key, algorithms=["RS256"]) == {"sub": "1"}


@pytest.mark.unit
def test_a_folder_of_public_keys_only_cannot_sign(tmp_path: Path) -> None:
    _write_public(tmp_path / "a.pem", ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(KeyRingError, match="no private key"):
        KeyRing.from_folder(tmp_path)


@pytest.mark.unit
def test_weak_or_foreign_keys_are_refused(tmp_path: Path) -> None:
    weak = _write_private(
        tmp_path / "weak.pem", rsa.generate_private_key(public_exponent=65537, key_size=1024)
    )
    with pytest.raises(KeyRingError, match="1024 bits"):
        load_key(weak)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ValueError):
        load_key(tmp_path / "junk.pem")


@pytest.mark.unit
def test_empty_folder_generates_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError, match=r"no \*\.pem keys"):
        KeyRing.from_folder(tmp_path / "keys")
    ring = KeyRing.from_folder(tmp_path / "keys", generate=True)
    files = list((tmp_path / "keys").glob("*.pem"))
    assert len(files) == 1
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    again = KeyRing.from_folder(tmp_path / "keys", generate=True)
    assert again.signing_key.kid == ring.signing_key.kid  # kept, not regenerated
    later = generate_key(tmp_path / "keys", "RS256")
    assert sorted((tmp_path / "keys").glob("*.pem"))[-1] == later
    assert KeyRing.from_folder(tmp_path / "keys").signing_key.algorithm == "RS256"


def test_rotation_keeps_old_tokens_valid(start_auth: StartAuth, tmp_path: Path) -> None:
    """Development key generated, then rotated to RS256, then the old key retired."""
    service = start_auth(name="rotation", redis=False)
    keys_dir = service.keys_dir
    generated = sorted(keys_dir.glob("*.pem"))
    assert len(generated) == 1
    with service.client() as client:
        account = signup(client)
        old_token = login_token(client, account["email"], PASSWORD)
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        assert jwt.get_unverified_header(old_token)["alg"] == "EdDSA"

        # rotate: a new key whose name sorts after the generated one, then a restart
        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(keys_dir / "rotated-rs256.pem", new_key)
        service.process.restart()

        published = client.get("/.well-known/jwks.json").json()
        kids = [k["kid"] for k in published["keys"]]
        # the generated key was kept (not replaced) and is still published
        assert sorted(keys_dir.glob("*.pem"))[0] == generated[0]
        assert len(kids) == 2 and old_kid in kids
        new_token = login_token(client, account["email"], PASSWORD)
        new_kid = jwt.get_unverified_header(new_token)["kid"]
        assert jwt.get_unverified_header(new_token)["alg"] == "RS256"
        assert new_kid == thumbprint(new_key.public_key()) and kids[0] == new_kid
        jwks = jwt.PyJWKSet.from_dict(published)
        for token, kid in ((old_token, old_kid), (new_token, new_kid)):
            claims = jwt.decode(
                token,
                jwks[kid].key,
                algorithms=[jwks[kid].algorithm_name],
                audience="gatehouse",
                issuer="gatehouse-auth",
            )
            assert claims["email"] == account["email"]
            me = client.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200

        # retire the old key entirely: its tokens stop verifying
        os.remove(generated[0])
        service.process.restart()
        assert [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]] == [new_kid]
        gone = client.get("/me", headers={"Authorization": f"Bearer {old_token}"})
        assert gone.status_code == 401
        assert (
            client.get("/me", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200
        )


@pytest.mark.unit
def test_workers_starting_together_generate_one_key(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        rings = list(pool.map(lambda _: KeyRing.from_folder(keys_dir, generate=True), range(8)))
    assert len(list(keys_dir.glob("*.pem"))) == 1
    assert len({ring.signing_key.kid for ring in rings}) == 1
