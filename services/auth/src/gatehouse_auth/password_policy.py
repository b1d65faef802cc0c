"""Which new passwords are refused, and why, in words a person can act on.

NIST SP 800-63B (5.1.1.2) asks verifiers to refuse passwords that are
commonly used, expected or compromised, and ones derived from the context
(the service, the username): a length rule alone lets ``password`` and
``12345678`` through. The strength estimate is zxcvbn's (Dropbox's), which
knows the common-password lists, keyboard patterns, repeats, dates and l33t
spellings, and is told the account's own email, username and the email's
local part so a password made of them scores as weak as it is.

The length rules (8 characters to bcrypt's 72 bytes) stay in
:func:`gatehouse_auth.models.check_password`; this runs after them.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

# zxcvbn's dictionaries named after what they hold; "user_inputs" is ours.
_CONTEXT_DICTIONARY = "user_inputs"


class WeakPassword(ValueError):
    """A refused password: ``rule`` is a stable code, ``message`` a sentence for the user."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def context_words(*, email: str, username: str) -> list[str]:
    """What a password must not be made of: the email, its local part, the username."""
    local = email.split("@", 1)[0]
    return [word for word in dict.fromkeys((email, local, username)) if word]


def check_password_strength(password: str, *, email: str, username: str, min_score: int) -> None:
    """Raise :class:`WeakPassword` when zxcvbn scores ``password`` under ``min_score``."""
    if min_score <= 0:
        return
    words = context_words(email=email, username=username)
    lowered = password.casefold()
    if any(lowered == word.casefold() for word in words):
        raise WeakPassword(
            "password_too_similar",
            "password is too similar to your email or username; choose something unrelated",
        )
    result = zxcvbn(password, user_inputs=words)
    if result["score"] >= min_score:
        return
    from_context = any(
        match.get("dictionary_name") == _CONTEXT_DICTIONARY for match in result["sequence"]
    )
    feedback = result["feedback"]
    hints = " ".join(part for part in [feedback["warning"], *feedback["suggestions"]] if part)
    if from_context:
        raise WeakPassword(
            "password_too_similar",
            "password is too similar to your email or username; choose something unrelated"
            + (f" ({hints})" if hints else ""),
        )
    raise WeakPassword(
        "password_too_common",
        "password is too common or too easy to guess" + (f" ({hints})" if hints else ""),
    )
