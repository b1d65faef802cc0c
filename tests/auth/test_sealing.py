"""sealing.Sealer: TOTP secrets sealed at rest, keys rotated, refusals that say why."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from gatehouse_auth.sealing import PREFIX, Sealer, SealError
from gatehouse_auth.settings import AuthSettings

pytestmark = pytest.mark.unit

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_sealed_secrets_open_with_the_key_and_carry_no_plain_text() -> None:
    sealer = Sealer([Fernet.generate_key().decode()])
    sealed = sealer.seal(SECRET)
    assert sealed.startswith(PREFIX) and SECRET not in sealed and len(sealed) <= 255
    assert sealer.open(sealed) == SECRET


def test_a_new_key_first_still_opens_what_the_old_one_sealed() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = Sealer([old]).seal(SECRET)
    assert Sealer([new, old]).open(sealed) == SECRET
    with pytest.raises(SealError):
        Sealer([new]).open(sealed)
    with pytest.raises(SealError):
        Sealer([]).open(sealed)


def test_without_keys_secrets_are_stored_as_they_are_and_plain_rows_still_open() -> None:
    assert Sealer([]).seal(SECRET) == SECRET
    assert Sealer([Fernet.generate_key().decode()]).open(SECRET) == SECRET


def test_keys_come_comma_separated_and_a_bad_one_fails_at_start() -> None:
    one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = AuthSettings(totp_encryption_keys=f"{one}, {two}")
    assert [key.get_secret_value() for key in settings.totp_encryption_keys] == [one, two]
    with pytest.raises(ValidationError, match="Fernet key"):
        AuthSettings(totp_encryption_keys="not-a-key")
