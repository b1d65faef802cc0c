"""How two independent parsers frame the bytes a backend received.

A request is smuggled when the front (the gateway) and the back (a backend)
disagree on where it ends. The bytes the gateway sends a backend must
therefore mean exactly one request to every reasonable parser: here
httptools (llhttp, what uvicorn and the gateway use) and h11 (a strict,
pure-Python implementation) must both see one whole request, with the same
method, target and body length, and nothing after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h11
import httptools

from gatehouse_common.extension_methods import ExtensionMethods


@dataclass
class Framing:
    """One parser's view of a byte string: the requests in it and how it ended."""

    requests: list[tuple[bytes, bytes, int]] = field(default_factory=list)  # method, target, body
    headers: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    error: str | None = None
    leftover: int = 0
    incomplete: bool = False


class _Collector:
    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self.parser: httptools.HttpRequestParser | None = None
        # a method llhttp does not know is read as the gateway's edge reads it
        self.methods = ExtensionMethods()
        self.method = b""
        self.url = b""
        self.body = 0
        self.current: list[tuple[bytes, bytes]] = []

    def on_message_begin(self) -> None:
        self.url, self.body, self.current = b"", 0, []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.parser is not None:
            swapped = self.methods.method()
            self.method = swapped.encode() if swapped else self.parser.get_method()

    def on_body(self, body: bytes) -> None:
        self.body += len(body)

    def on_message_complete(self) -> None:
        self.framing.requests.append((self.method, self.url, self.body))
        self.framing.headers.append(self.current)


def httptools_framing(data: bytes) -> Framing:
    framing = Framing()
    collector = _Collector(framing)
    parser = httptools.HttpRequestParser(collector)
    collector.parser = parser
    data = collector.methods.feed(data)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade as exc:
        framing.leftover = len(data) - int(exc.args[0]) if exc.args else 0
    except httptools.HttpParserError as exc:
        framing.error = f"{type(exc).__name__}: {exc}"
    return framing


def h11_framing(data: bytes) -> Framing:
    """h11 reads one request; bytes after its end count as ``leftover``."""
    framing = Framing()
    conn = h11.Connection(our_role=h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(data)
    conn.receive_data(b"")
    method = target = b""
    body = 0
    headers: list[tuple[bytes, bytes]] = []
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                method, target = event.method, event.target
                headers = [(bytes(k), bytes(v)) for k, v in event.headers]
            elif isinstance(event, h11.Data):
                body += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                framing.requests.append((method, target, body))
                framing.headers.append(headers)
                framing.leftover = len(conn.trailing_data[0])
                break
            elif (
                event is h11.NEED_DATA
                or event is h11.PAUSED
                or isinstance(event, h11.ConnectionClosed)
            ):
                framing.incomplete = True
                break
    except h11.RemoteProtocolError as exc:
        framing.error = f"RemoteProtocolError: {exc}"
    return framing


def disagreement(data: bytes) -> str | None:
    """Why ``data`` is not exactly one unambiguous request, or None if it is."""
    fast, strict = httptools_framing(data), h11_framing(data)
    if fast.error or strict.error:
        return f"parse error (httptools: {fast.error}; h11: {strict.error})"
    if len(fast.requests) != 1:
        return f"httptools sees {len(fast.requests)} requests"
    if strict.incomplete or len(strict.requests) != 1:
        return "h11 sees no whole request"
    if strict.leftover:
        return f"h11 sees {strict.leftover} bytes after the request (a second request?)"
    (f_method, f_target, f_body), (s_method, s_target, s_body) = (
        fast.requests[0],
        strict.requests[0],
    )
    if (f_method, f_target, f_body) != (s_method, s_target, s_body):
        return (
            f"httptools sees {f_method!r} {f_target!r} with a {f_body}-byte body, "
            f"h11 {s_method!r} {s_target!r} with {s_body}"
        )
    return None


def cut_short(data: bytes) -> bool:
    """``data`` is one request head whose body stops before its framing says it ends.

    What a backend sees when the gateway gave up on a client's body half way
    (a broken chunk, a stalled upload) and closed the backend connection: a
    request cut short cannot be read as a second one.
    """
    fast, strict = httptools_framing(data), h11_framing(data)
    return (
        fast.error is None
        and not fast.requests
        and strict.error is not None
        and "without sending complete message body" in strict.error
    )
