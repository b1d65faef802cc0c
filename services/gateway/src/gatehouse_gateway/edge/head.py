"""One pass over a request head: what the gateway keeps, replaces, drops or refuses.

The client cannot name an identity or a hop it did not make. Every header the
gateway sets itself (identity, request id, forwarding) is dropped from the
client's request in any spelling, underscores included: WSGI and CGI servers
read ``X_Auth_Roles`` as ``X-Auth-Roles``. Headers with an underscore are
dropped by default (nginx's ``underscores_in_headers off``, Envoy's
``headers_with_underscores_action``), or refused, or passed on, as the config
says. A second ``Host`` or ``Authorization`` is refused: the gateway would
check one and the backend could read the other.

The result is a :class:`RequestHead`; a head the gateway will not forward
raises :class:`Refusal` with the answer to give.
"""

from __future__ import annotations

import re
from typing import Any

from gatehouse_common.error_shape import error_body
from gatehouse_common.request_id import accept_request_id
from gatehouse_gateway.config.schema import EdgeConfig
from gatehouse_gateway.edge.forwarding import TrustedProxies, forwarded_element
from gatehouse_gateway.edge.path import BadPath, normalise_path

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Response headers a client never gets from a backend: uvicorn writes its own
# Date, and the request id is the gateway's to set.
RESPONSE_DROP = HOP_BY_HOP | {b"x-request-id", b"date"}
# Identity headers the gateway sets from a verified token.
IDENTITY_HEADERS = frozenset({b"x-auth-subject", b"x-auth-email", b"x-auth-roles"})
# Everything the gateway sets on a forwarded request: never taken from a client as is.
FORWARDING_HEADERS = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-real-ip"}
)
GATEWAY_SET = IDENTITY_HEADERS | FORWARDING_HEADERS | {b"x-request-id"}

# What happens to each request header the gateway does not pass through as is.
(
    _DROP,
    _HOST,
    _AUTHZ,
    _RID,
    _XFF,
    _XFP,
    _XFH,
    _FORWARDED,
    _REAL_IP,
    _CONNECTION,
    _LENGTH,
    _CHUNKED,
) = range(12)
_SPECIAL: dict[bytes, int] = dict.fromkeys(HOP_BY_HOP | IDENTITY_HEADERS, _DROP)
_SPECIAL.update(
    {
        b"host": _HOST,
        b"authorization": _AUTHZ,
        b"x-request-id": _RID,
        b"x-forwarded-for": _XFF,
        b"x-forwarded-proto": _XFP,
        b"x-forwarded-host": _XFH,
        b"forwarded": _FORWARDED,
        b"x-real-ip": _REAL_IP,
        b"connection": _CONNECTION,
        b"content-length": _LENGTH,
        b"transfer-encoding": _CHUNKED,
    }
)
# A host name, IPv4 or bracketed IPv6 address, and an optional port: nothing
# that could break out of a header or a Forwarded quoted-string.
_VALID_HOST = re.compile(rb"^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_VALID_HOSTS_KEPT = 1024
# an IPv4 or IPv6 address as X-Forwarded-For lists it (no port, no brackets)
_VALID_ADDRESS = re.compile(rb"^(?:[0-9.]{7,15}|[0-9A-Fa-f:.]{2,45})$")
_SCHEMES = {"http": b"http", "https": b"https"}
# CONNECT would make the gateway a tunnel to anywhere, TRACE echoes a request's
# credentials back to a script (cross-site tracing): neither is forwarded.
_REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})
_ALLOWED = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
# "2": HTTP/2 clients (gatehouse_common.h2_protocol); upstream stays HTTP/1.1
_VERSIONS = frozenset({"1.0", "1.1", "2"})
# an int needle: ``b"_" in name`` makes and drops a TypeError per header on
# CPython 3.11 (bytes.__contains__ tries an int first), ~2,000 instructions each
_UNDERSCORE = ord("_")


class Refusal(Exception):
    """A head the gateway will not forward; ``status`` and ``body`` are the answer."""

    def __init__(self, status: int, code: str, detail: str, *headers: tuple[bytes, bytes]) -> None:
        super().__init__(detail)
        self.status = status
        self.body = error_body(code, detail)
        self.headers = headers


class RequestHead:
    """What one pass over the head found: the parts the gateway acts on, and the rest."""

    __slots__ = (
        "authorization",
        "chunked",
        "client",
        "connection",
        "forwarded",
        "header_bytes",
        "headers",
        "host",
        "length",
        "path",
        "raw_request_id",
        "x_forwarded_for",
        "x_forwarded_host",
        "x_forwarded_proto",
        "x_real_ip",
    )

    def __init__(self) -> None:
        self.host = b""
        self.authorization: bytes | None = None
        self.raw_request_id: bytes | None = None
        self.x_forwarded_for: bytes | None = None
        self.x_forwarded_proto: bytes | None = None
        self.x_forwarded_host: bytes | None = None
        self.forwarded: bytes | None = None
        self.x_real_ip: bytes | None = None
        self.connection: bytes | None = None
        self.length: bytes | None = None
        self.chunked = False
        self.header_bytes = 0
        # Headers stay bytes end to end: nothing is decoded only to be encoded again.
        self.headers: list[tuple[bytes, bytes]] = []
        self.path = b"/"
        self.client = b""


def upstream_headers(head: RequestHead) -> list[tuple[bytes, bytes]]:
    """The client's headers as the backend gets them, minus hop-by-hop ones.

    Identity and forwarding headers are added after this; the list is the
    request's own, so later steps may extend it.
    """
    out = head.headers
    if head.connection is not None:
        # Headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1).
        named = {t.strip().lower() for t in head.connection.split(b",")}
        out = [(k, v) for k, v in out if k.lower() not in named]
    return out


class HeadRules:
    """The edge config compiled for the hot path; rebuilt with every config."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.trusted = TrustedProxies(config.trusted_proxies)
        self.underscores = config.underscores_in_headers
        self.escaped_slashes = config.escaped_slashes
        # Host values already matched by _VALID_HOST: the match costs about 5,500
        # instructions a request, a set lookup a few dozen. Only valid ones are
        # kept, at most _VALID_HOSTS_KEPT: past that, hosts are matched each time.
        self._valid_hosts: set[bytes] = set()

    def read(self, scope: Any) -> RequestHead:
        """The head of ``scope`` (an ASGI HTTP scope); raises :class:`Refusal`."""
        if scope["method"] in _REFUSED_METHODS:
            raise Refusal(
                405,
                "method_not_allowed",
                f"the gateway does not forward {scope['method']}",
                (b"allow", _ALLOWED),
            )
        if scope.get("http_version", "1.1") not in _VERSIONS:
            raise Refusal(505, "http_version_not_supported", "HTTP/1.0, 1.1 and 2 only")
        head = RequestHead()
        out = head.headers
        special = _SPECIAL
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            kind = special.get(name)
            if kind is None:
                if _UNDERSCORE in name and not self._underscore_passes(name):
                    continue
                out.append((name, value))
            elif kind == _DROP:
                continue
            elif kind == _HOST:
                if head.host:
                    raise Refusal(400, "bad_request", "more than one Host header")
                head.host = value
            elif kind == _AUTHZ:
                if head.authorization is not None:
                    raise Refusal(400, "bad_request", "more than one Authorization header")
                head.authorization = value
                out.append((name, value))
            elif kind == _RID:
                if head.raw_request_id is None:
                    head.raw_request_id = value
            elif kind == _LENGTH:
                head.length = value
                out.append((name, value))
            elif kind == _XFF:
                head.x_forwarded_for = _joined(head.x_forwarded_for, value)
            elif kind == _XFP:
                head.x_forwarded_proto = _joined(head.x_forwarded_proto, value)
            elif kind == _XFH:
                head.x_forwarded_host = _joined(head.x_forwarded_host, value)
            elif kind == _FORWARDED:
                head.forwarded = _joined(head.forwarded, value)
            elif kind == _REAL_IP:
                head.x_real_ip = value
            elif kind == _CHUNKED:
                if value.strip().lower() != b"chunked" or head.chunked:
                    # RFC 9112 section 6.1: any other coding, or chunked applied twice,
                    # leaves the body's length to guesswork between us and the backend
                    raise Refusal(501, "not_implemented", "a transfer coding other than chunked")
                head.chunked = True
            else:
                head.connection = _joined(head.connection, value)
        head.header_bytes = header_bytes
        if head.chunked and scope.get("http_version") == "1.0":
            # HTTP/1.0 has no chunked framing: its body length is not what it says
            raise Refusal(400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request")
        if head.host:
            if head.host not in self._valid_hosts:
                if not _VALID_HOST.match(head.host):
                    raise Refusal(400, "bad_request", "the Host header is not a host name")
                if len(self._valid_hosts) < _VALID_HOSTS_KEPT:
                    self._valid_hosts.add(head.host)
        elif scope.get("http_version") == "1.1":
            raise Refusal(400, "bad_request", "an HTTP/1.1 request needs a Host header")
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            head.path = normalise_path(raw_path, self.escaped_slashes)
        except BadPath as exc:
            raise Refusal(400, "bad_path", exc.reason) from None
        client = scope.get("client")
        head.client = client[0].encode() if client else b""
        return head

    def _underscore_passes(self, name: bytes) -> bool:
        if self.underscores == "drop":
            return False
        if self.underscores == "reject":
            raise Refusal(400, "bad_header", "a request header name holds an underscore")
        # allowed, but never a spelling of a header the gateway itself sets
        return name.replace(b"_", b"-") not in GATEWAY_SET

    def forwarding_headers(
        self, head: RequestHead, scope: Any, request_id: bytes
    ) -> list[tuple[bytes, bytes]]:
        """The request id and forwarding headers the backend gets.

        From a trusted proxy the chains it sent are appended to; from anyone
        else they are what the gateway saw, whatever the client claimed.
        """
        client = head.client
        proto = _SCHEMES.get(scope.get("scheme", "http")) or scope["scheme"].encode()
        host = head.host
        element = forwarded_element(client, proto, host)
        if self.trusted and self.trusted.trusts(client.decode()):
            return [
                (b"x-request-id", request_id),
                (b"x-forwarded-for", _appended(head.x_forwarded_for, client)),
                (b"x-forwarded-proto", _appended(head.x_forwarded_proto, proto)),
                (b"x-forwarded-host", _appended(head.x_forwarded_host, host)),
                (b"forwarded", _appended(head.forwarded, element)),
                (b"x-real-ip", head.x_real_ip or client),
            ]
        return [
            (b"x-request-id", request_id),
            (b"x-forwarded-for", client),
            (b"x-forwarded-proto", proto),
            (b"x-forwarded-host", host),
            (b"forwarded", element),
            (b"x-real-ip", client),
        ]

    def client_address(self, head: RequestHead) -> bytes:
        """The client's address as the gateway vouches for it (rate limits key on it).

        The peer's, unless the peer is a trusted proxy: then the rightmost
        ``X-Forwarded-For`` hop that is not itself a trusted proxy (nginx's
        ``real_ip_recursive``), since every hop left of it could be forged by
        the client. A malformed hop ends the walk at the last good one.
        """
        peer = head.client
        chain = head.x_forwarded_for
        if not chain or not self.trusted or not self.trusted.trusts(peer.decode()):
            return peer
        vouched = peer
        for hop in reversed(chain.split(b",")):
            address = hop.strip()
            if not _VALID_ADDRESS.match(address):
                break
            vouched = address
            if not self.trusted.trusts(address.decode()):
                break
        return vouched

    @staticmethod
    def request_id(head: RequestHead) -> str:
        return accept_request_id(head.raw_request_id)


def _joined(previous: bytes | None, value: bytes) -> bytes:
    """Repeated list-valued headers as one (RFC 9110 section 5.3)."""
    return value if previous is None else previous + b", " + value


def _appended(chain: bytes | None, hop: bytes) -> bytes:
    return chain + b", " + hop if chain else hop
