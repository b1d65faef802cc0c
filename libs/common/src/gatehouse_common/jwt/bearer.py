"""Taking the token out of an ``Authorization`` header."""

from __future__ import annotations


def bearer_token(authorization: bytes | str | None) -> str | None:
    """The token of ``Bearer <token>`` (scheme case-insensitive), or a bare token.

    The original Flask app accepted the token alone in the header, so a value
    without a scheme is taken as the token; any other scheme (``Basic ...``)
    or extra words give None. Called per request by the gateway, hence plain
    string operations rather than a regular expression.
    """
    if not authorization:
        return None
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    parts = authorization.split()
    if len(parts) == 1:
        return None if parts[0].lower() == "bearer" else parts[0]
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return None
