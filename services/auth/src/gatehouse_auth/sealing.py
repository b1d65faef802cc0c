"""TOTP secrets sealed at rest with Fernet (cryptography's authenticated encryption).

A TOTP verifier must read its secrets, so they cannot be hashed; sealing them
with a key kept outside the database means a copy of the database or of its
backups does not hand out every admin's second factor. With
``GATEHOUSE_AUTH_TOTP_ENCRYPTION_KEYS`` unset, secrets are stored as they are
(and said so at start). Several keys may be given (comma-separated): the first
seals, every one opens, so a key is rotated by putting a new one first.

Sealed values carry the ``fernet:`` prefix, so rows stored before a key was
set keep working and are sealed the next time they are written.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

logger = logging.getLogger(__name__)
PREFIX = "fernet:"


class SealError(Exception):
    """A sealed value none of the keys opens (a key was removed too early)."""


class Sealer:
    """Seals and opens short secrets; without keys both are the identity."""

    def __init__(self, keys: list[str]) -> None:
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys]) if keys else None

    @property
    def sealing(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None:
            return value
        return PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise SealError("a sealed TOTP secret, and no GATEHOUSE_AUTH_TOTP_ENCRYPTION_KEYS")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SealError("no TOTP encryption key opens this secret") from None


def check_keys(keys: list[str]) -> list[str]:
    """``keys`` when each is a Fernet key (32 url-safe base64 bytes); ValueError otherwise."""
    for key in keys:
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ValueError(
                "each TOTP encryption key must be a Fernet key (32 url-safe base64 bytes: "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
    return keys
