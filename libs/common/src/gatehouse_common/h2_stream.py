"""One HTTP/2 stream as one ASGI request: its scope, ``receive`` and ``send``.

The connection (:mod:`gatehouse_common.h2_protocol`) owns the socket, the
``h2`` state machine and the writer; a stream only holds what belongs to one
request: the body bytes received and not yet read by the app (at most the
stream's flow-control window, since they are acknowledged to the client only
when the app reads them, so a slow app holds the client back instead of
buffering), the response bytes waiting for the writer, and the times the body
timeout is measured from.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

# Connection-specific fields never travel in HTTP/2 (RFC 9113 section 8.2.2):
# an app answering as for HTTP/1.1 (a proxy passing a backend's head on) has
# them dropped here rather than the stream failing.
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


# What may stand in an HTTP/1.1 request line, which a proxy writes these into:
# a method is a token (RFC 9110 section 5.6.2); a target is visible ASCII with
# no fragment. h2 only keeps CR, LF and NUL out of values, so a space in
# :path would otherwise split the request line the backend reads.
_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"/[\x21-\x22\x24-\x7e]*")


class BadRequest(Exception):
    """The stream's head cannot be made into an ASGI request (answered 400)."""


class StreamOwner(Protocol):
    """What a stream asks of its connection."""

    def read_body(self, stream: H2Stream, size: int) -> None: ...

    def send_continue(self, stream: H2Stream) -> None: ...

    def start_response(
        self, stream: H2Stream, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None: ...

    async def write_body(self, stream: H2Stream, data: bytes, end: bool) -> None: ...


def request_scope(
    headers: Iterable[tuple[bytes, bytes]],
    base: dict[str, Any],
    max_header_count: int,
    *,
    body_follows: bool,
) -> dict[str, Any]:
    """The ASGI scope of a request head ``h2`` has already validated.

    ``:authority`` becomes ``Host`` (``h2`` refuses a ``Host`` that disagrees
    with it); cookie fields split by the client are joined again (RFC 9113
    section 8.2.3), as an HTTP/1.1 app expects one ``Cookie``. A body of no
    declared length (HEADERS without END_STREAM, no ``content-length``) is
    what HTTP/1.1 calls chunked, and the scope says so: an app (a proxy)
    deciding from the head whether a body follows sees it as it would from an
    HTTP/1.1 client.
    """
    method = path = authority = b""
    regular: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    host: bytes | None = None
    for name, value in headers:
        if name.startswith(b":"):
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue
        if name == b"cookie":
            cookies.append(value)
        elif name == b"host":
            host = value
        else:
            regular.append((name, value))
    if cookies:
        regular.append((b"cookie", b"; ".join(cookies)))
    if body_follows and not any(name == b"content-length" for name, _ in regular):
        regular.append((b"transfer-encoding", b"chunked"))
    authority = authority or host or b""
    if authority:
        regular.insert(0, (b"host", authority))
    if len(regular) > max_header_count:
        raise OverflowError
    if method == b"CONNECT" or not _METHOD.fullmatch(method) or not _TARGET.fullmatch(path):
        # CONNECT (and asterisk-form OPTIONS) name no resource a service has
        raise BadRequest
    raw_path, _, query = path.partition(b"?")
    try:
        text_path = raw_path.decode("ascii")
        text_method = method.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadRequest from exc
    if "%" in text_path:
        text_path = urllib.parse.unquote(text_path)
    return {
        **base,
        "method": text_method,
        "path": base["root_path"] + text_path,
        "raw_path": base["root_path"].encode("ascii") + raw_path,
        "query_string": query,
        "headers": regular,
    }


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], default_headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """An app's response headers as HTTP/2 carries them: lower case, no hop-by-hop."""
    out: list[tuple[bytes, bytes]] = []
    seen: set[bytes] = set()
    for name, value in headers:
        lower = bytes(name).lower()
        if lower in _HOP_BY_HOP:
            continue
        seen.add(lower)
        out.append((lower, bytes(value)))
    out += [(name, value) for name, value in default_headers if name.lower() not in seen]
    return out


class H2Stream:
    """The state of one request/response exchange on a connection."""

    __slots__ = (
        "body",
        "body_size",
        "ended",
        "expect_continue",
        "final_sent",
        "head_only",
        "last_data",
        "owner",
        "read_event",
        "reset",
        "response_complete",
        "response_started",
        "stream_id",
        "unacknowledged",
        "waiting",
    )

    def __init__(self, owner: StreamOwner, stream_id: int, *, head_only: bool, now: float) -> None:
        self.owner = owner
        self.stream_id = stream_id
        self.head_only = head_only  # a HEAD request: the body an app sends is dropped
        self.body: list[bytes] = []
        self.body_size = 0
        self.unacknowledged = 0  # flow-controlled bytes received, not yet read
        self.ended = False  # the client's END_STREAM
        self.expect_continue = False  # "expect: 100-continue": 100 when the app first waits
        self.final_sent = False  # the app was given more_body=False
        self.reset = False  # the client reset it, or the connection is gone
        self.waiting = False  # the app waits in receive()
        self.last_data = now
        self.response_started = False
        self.response_complete = False
        self.read_event = asyncio.Event()

    # from the connection
    def data_received(self, data: bytes, flow_controlled: int, now: float) -> None:
        self.body.append(data)
        self.body_size += len(data)
        self.unacknowledged += flow_controlled
        self.last_data = now
        self.read_event.set()

    def end(self) -> None:
        self.ended = True
        self.read_event.set()

    def disconnect(self) -> None:
        self.reset = True
        self.read_event.set()

    # the ASGI callables
    async def receive(self) -> dict[str, Any]:
        while True:
            if self.reset:
                return {"type": "http.disconnect"}
            if self.body or (self.ended and not self.final_sent):
                data = b"".join(self.body) if len(self.body) != 1 else self.body[0]
                self.body.clear()
                self.body_size = 0
                acknowledged, self.unacknowledged = self.unacknowledged, 0
                self.owner.read_body(self, acknowledged)
                self.final_sent = self.ended
                return {"type": "http.request", "body": data, "more_body": not self.ended}
            if self.final_sent and self.response_complete:
                return {"type": "http.disconnect"}
            if self.expect_continue and not self.response_started:
                # the client waits for this before sending the body, as uvicorn does for HTTP/1.1
                self.expect_continue = False
                self.owner.send_continue(self)
            self.read_event.clear()
            self.waiting = True
            # the body timeout counts from when the app asks, not from its last byte
            self.last_data = max(self.last_data, asyncio.get_running_loop().time())
            try:
                await self.read_event.wait()
            finally:
                self.waiting = False

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.reset:
            return  # the client is gone: nothing to write, as uvicorn does after a disconnect
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("the response has already started")
            self.response_started = True
            self.owner.start_response(
                self, int(message["status"]), list(message.get("headers", ()))
            )
        elif kind == "http.response.body":
            if not self.response_started or self.response_complete:
                raise RuntimeError("http.response.body outside a response")
            more = bool(message.get("more_body", False))
            data = b"" if self.head_only else bytes(message.get("body", b""))
            self.response_complete = not more
            if data or not more:
                await self.owner.write_body(self, data, not more)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an HTTP/2 stream")
