"""bcrypt hashing, with a dummy hash so an unknown email costs what a wrong password costs.

bcrypt reads at most 72 bytes and bcrypt 5 raises past that; new passwords are
validated before they get here (see :func:`gatehouse_auth.models.check_password`),
and a login with a longer password is simply wrong, after the same work.
"""

from __future__ import annotations

import secrets

import bcrypt

from gatehouse_auth.models import PASSWORD_MAX_BYTES


class PasswordHasher:
    """Hashes and verifies with one cost factor (``rounds``, 2**rounds iterations)."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        # A hash of a random password at the same cost: verifying against it
        # when the email is unknown makes that answer take as long as a real one.
        self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds))

    def hash(self, password: str) -> str:
        encoded = password.encode("utf-8")
        if len(encoded) > PASSWORD_MAX_BYTES:
            raise ValueError(f"password longer than {PASSWORD_MAX_BYTES} bytes")
        return bcrypt.hashpw(encoded, bcrypt.gensalt(self.rounds)).decode("ascii")

    def verify(self, password: str, hashed: str | None) -> bool:
        """True when ``password`` matches ``hashed``; ``None`` burns the same time and is False."""
        encoded = password.encode("utf-8")
        too_long = len(encoded) > PASSWORD_MAX_BYTES
        target = self._dummy_hash if hashed is None else hashed.encode("ascii")
        matched = bcrypt.checkpw(encoded[:PASSWORD_MAX_BYTES], target)
        return matched and hashed is not None and not too_long

    def needs_rehash(self, hashed: str) -> bool:
        """A hash made with another cost (say before the cost was raised)."""
        try:
            return int(hashed.split("$")[2]) != self.rounds
        except (IndexError, ValueError):
            return True


def generate_password(length: int = 20) -> str:
    """A random password for the development admin, readable enough to type."""
    return secrets.token_urlsafe(length)[:length]
