"""Which signing algorithms a verifier may accept, and with which kind of key.

Only asymmetric algorithms are ever accepted. ``none`` would accept unsigned
tokens, and an HMAC algorithm verified with a *public* key lets anyone who has
the public key (everyone: it is in the JWKS) forge tokens, the classic
algorithm-confusion attack. So both are dropped from any allow-list, and the
algorithm a token names must match the type of the key it is checked with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

logger = logging.getLogger(__name__)

# The JWK "kty" each asymmetric algorithm needs (RFC 7518 section 3.1, RFC 8037).
KEY_TYPE_FOR_ALGORITHM: Final[dict[str, str]] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES256K": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "ES521": "EC",
    "EdDSA": "OKP",
}


def allowed_algorithms(requested: Sequence[str]) -> frozenset[str]:
    """The asymmetric subset of ``requested``; anything else is dropped with a warning.

    Raises ``ValueError`` when nothing usable is left, because a verifier that
    accepts no algorithm refuses every token and is certainly a misconfiguration.
    """
    if isinstance(requested, str):
        requested = [requested]
    kept = frozenset(alg for alg in requested if alg in KEY_TYPE_FOR_ALGORITHM)
    dropped = sorted(set(requested) - kept)
    if dropped:
        logger.warning(
            "ignoring algorithms that are not asymmetric signatures: %s",
            ", ".join(dropped),
            extra={"dropped_algorithms": dropped},
        )
    if not kept:
        raise ValueError(
            "no usable algorithm in the allow-list; choose from "
            + ", ".join(sorted(KEY_TYPE_FOR_ALGORITHM))
        )
    return kept


def key_fits(algorithm: str, key_type: str | None) -> bool:
    """True when a token signed with ``algorithm`` may be checked with a ``key_type`` key."""
    expected = KEY_TYPE_FOR_ALGORITHM.get(algorithm)
    return expected is not None and expected == key_type
