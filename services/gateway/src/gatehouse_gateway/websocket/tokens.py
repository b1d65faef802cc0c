"""Where a WebSocket handshake's token comes from, per the route's ``websocket_token_sources``.

Browsers cannot set ``Authorization`` on a WebSocket, so a route may also take
the token as a ``Sec-WebSocket-Protocol`` entry ``bearer.<jwt>`` (a JWT is
made of subprotocol-safe characters) or as ``?access_token=<jwt>``. Whatever
source a route allows is scrubbed before the backend sees the handshake: the
``bearer.`` entries leave the offered subprotocols (so the backend can never
select one and the token is never echoed back as the chosen subprotocol), and
``access_token`` leaves the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

BEARER_PREFIX = "bearer."
QUERY_PARAMETER = b"access_token"


class HandshakeToken:
    """The token found (or None), and the subprotocols and query the backend gets."""

    __slots__ = ("query", "subprotocols", "token")

    def __init__(self, token: bytes | None, subprotocols: list[str], query: bytes) -> None:
        self.token = token
        self.subprotocols = subprotocols
        self.query = query


def split_subprotocols(offered: list[str]) -> tuple[bytes | None, list[str]]:
    """The first ``bearer.<jwt>`` entry's token, and the other entries."""
    token: bytes | None = None
    kept: list[str] = []
    for entry in offered:
        if entry[:7].lower() == BEARER_PREFIX:
            if token is None and len(entry) > 7:
                token = entry[7:].encode("latin-1")
        else:
            kept.append(entry)
    return token, kept


def split_query(query: bytes) -> tuple[bytes | None, bytes]:
    """The first ``access_token`` value (percent-decoded), and the query without any."""
    if QUERY_PARAMETER not in query:
        return None, query
    token: bytes | None = None
    kept: list[bytes] = []
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) == QUERY_PARAMETER:
            if token is None and value:
                token = unquote_to_bytes(value.replace(b"+", b" "))
        else:
            kept.append(part)
    return token, b"&".join(kept)


def find_token(
    sources: Sequence[str], authorization: bytes | None, offered: list[str], query: bytes
) -> HandshakeToken:
    """Look in ``sources`` in the route's order; scrub every allowed source."""
    from_subprotocol: bytes | None = None
    from_query: bytes | None = None
    if "subprotocol" in sources:
        from_subprotocol, offered = split_subprotocols(offered)
    if "query" in sources:
        from_query, query = split_query(query)
    found = {"header": authorization, "subprotocol": from_subprotocol, "query": from_query}
    token = next((found[source] for source in sources if found[source]), None)
    return HandshakeToken(token, offered, query)
