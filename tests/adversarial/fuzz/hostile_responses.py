"""A generator of hostile backend responses, and a reference reading of each.

Responses are built from a grammar of what breaks HTTP clients: odd status
lines and codes, Content-Length and Transfer-Encoding that disagree or lie,
broken chunking, folded or NUL-bearing header lines, floods of headers or of
1xx interim answers, heads delivered slowly, connections reset or left open.
:func:`reference` reads the same bytes with h11 (strict) and httptools
(llhttp): when both read one whole response alike, a proxy must pass it on
exactly; otherwise it must answer 502/504 (or cut a streamed body short).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import h11
import httptools

# Not 500: an answer of 500 is then always the gateway's own, which is what is checked.
GOOD_STATUS = [200, 201, 204, 301, 304, 404, 418, 503]
# the gateway's bound on a response head (interim answers included)
HEAD_LIMIT = 64 * 1024
ODD_STATUS_LINES = [
    b"HTTP/1.1 999 Weird",
    b"HTTP/1.1 0 Zero",
    b"HTTP/1.1 99 Low",
    b"HTTP/1.1 600 High",
    b"HTTP/1.1 abc X",
    b"HTTP/1.1 200",
    b"HTTP/1.0 200 OK",
    b"HTTP/2 200 OK",
    b"http/1.1 200 OK",
    b"HTTP/1.1  200 OK",
    b"ICY 200 OK",
    b"HTTP/1.1 101 Switching Protocols",
    b"HTTP/1.1 200 OK\x00",
    b"HTTP/1.1 -200 OK",
    b"HTTP/1.1 2000 OK",
]


@dataclass
class ResponseCase:
    """What the backend sends: ``(pause_before, bytes)`` pieces, then how it hangs up."""

    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    after: str = "close"  # close | keep | reset | hold
    note: str = ""
    # Set when the contract names the answer: 502 for a status outside 100-599,
    # an unasked-for 101, a head over 64 KiB or 100 lines; 504 for a slow head.
    must_fail: str | None = None

    @property
    def data(self) -> bytes:
        return b"".join(piece for _, piece in self.pieces)

    @property
    def pauses(self) -> float:
        return sum(pause for pause, _ in self.pieces)


def _body(rng: random.Random) -> bytes:
    return rng.choice([b"", b"hello", b"x" * 1000, bytes(range(256)) * 400])  # up to 100 KiB


def _chunks(rng: random.Random, body: bytes, note: list[str]) -> bytes:
    out = b""
    pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)] if body else []
    for piece in pieces:
        size = b"%x" % len(piece)
        roll = rng.random()
        if roll < 0.05:
            size, _ = rng.choice([(b"ffffffffffffffffff", 0), (b"-1", 0), (b"zz", 0)])
            note.append(f"chunk size {size!r}")
        elif roll < 0.1:
            size += b";ext=" + b"e" * rng.choice([10, 5000])
            note.append("chunk extension")
        out += size + b"\r\n" + piece + b"\r\n"
    roll = rng.random()
    if roll < 0.1:
        note.append("no last chunk")
        return out
    if roll < 0.2:
        note.append("trailer")
        return out + b"0\r\nX-Trailer: t\r\n\r\n"
    return out + b"0\r\n\r\n"


def generate(rng: random.Random) -> ResponseCase:
    note: list[str] = []
    if rng.random() < 0.8:
        status = rng.choice(GOOD_STATUS)
        status_line = b"HTTP/1.1 %d X" % status
    else:
        status_line = rng.choice(ODD_STATUS_LINES)
        note.append(status_line.decode("latin-1"))
    code = status_line.split(b" ")[1] if status_line.count(b" ") else b""
    fail = None
    well_formed = status_line.startswith(b"HTTP/1.") and status_line[8:9] == b" " and code
    out_of_range = not code.isdigit() or not 100 <= int(code) <= 599 or int(code) == 101
    if well_formed and out_of_range:
        fail = f"status {code!r}"
    body = _body(rng)
    headers: list[bytes] = [b"Content-Type: application/octet-stream"]
    roll = rng.random()
    if roll < 0.4:
        headers.append(b"Content-Length: %d" % len(body))
        payload = body
    elif roll < 0.55:
        headers.append(b"Transfer-Encoding: chunked")
        payload = _chunks(rng, body, note)
        note.append("chunked")
    elif roll < 0.62:
        headers.append(b"Content-Length: %d" % (len(body) + rng.choice([5, 100])))
        payload = body
        note.append("CL longer than the body")
    elif roll < 0.69:
        headers.append(b"Content-Length: %d" % max(0, len(body) - 3))
        payload = body
        note.append("CL shorter than the body")
    elif roll < 0.74:
        headers += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]
        payload = _chunks(rng, body, note)
        note.append("CL+TE")
    elif roll < 0.78:
        value = rng.choice([b"5, 5", b"-1", b"99999999999999999999", b"0x10", b" 5", b"5 5"])
        headers.append(b"Content-Length: " + value)
        payload = body
        note.append(f"CL {value!r}")
    elif roll < 0.82:
        headers += [b"Content-Length: %d" % len(body), b"Content-Length: 1"]
        payload = body
        note.append("CL twice")
    elif roll < 0.86:
        headers.append(b"Transfer-Encoding: " + rng.choice([b"xchunked", b"gzip", b"chunked, x"]))
        payload = _chunks(rng, body, note)
        note.append("odd TE")
    else:
        payload = body
        note.append("close-delimited")
    extra = rng.random()
    if extra < 0.05:
        headers.append(b"X-Big: " + b"b" * rng.choice([70_000, 200_000]))
        note.append("huge header")
        fail = fail or "a head over 64 KiB"
    elif extra < 0.1:
        headers += [b"X-Many-%d: v" % i for i in range(rng.choice([120, 2000]))]
        note.append("many headers")
        fail = fail or "a head of over 100 lines"
    elif extra < 0.14:
        headers.append(b"X-Fold: a\r\n folded")
        note.append("obs-fold")
    elif extra < 0.18:
        headers.append(b"X-Nul: a\x00b")
        note.append("NUL")
    elif extra < 0.22:
        headers.append(b"no colon here")
        note.append("no colon")
    elif extra < 0.26:
        headers.append(rng.choice([b"Connection: keep-alive", b"Connection: close"]))
    elif extra < 0.3:
        headers.append(b"X-Request-ID: backend-chosen")
    newline = b"\r\n"
    if rng.random() < 0.04:
        newline = b"\n"
        note.append("bare LF")
    head = status_line + newline + newline.join(headers) + newline + newline
    interim = b""
    roll = rng.random()
    if roll < 0.06:
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        note.append("100 first")
    elif roll < 0.09:
        interim = b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
        note.append("103 first")
    elif roll < 0.11:
        interim = b"HTTP/1.1 100 Continue\r\n\r\n" * rng.choice([200, 5000])
        note.append("1xx flood")
        if len(interim) > HEAD_LIMIT:
            # interim answers count toward the response head's bound: a backend
            # flooding them is refused like an oversized head, not waited out
            fail = fail or "a 1xx flood over the response head limit"
    case = ResponseCase(note=", ".join(note), must_fail=fail)
    roll = rng.random()
    if roll < 0.08 and len(head) > 20:
        cut = rng.randrange(5, len(head) - 5)
        pause = rng.choice([0.5, 3.0])
        case.pieces = [(0.0, interim + head[:cut]), (pause, head[cut:] + payload)]
        case.note += f", {pause}s pause in the head"
        if pause >= 2.0:
            case.must_fail = case.must_fail or "a head slower than the read timeout"
    elif roll < 0.12:
        case.pieces = [(0.0, interim + head + payload[: len(payload) // 2])]
        case.note += ", body cut"
        case.after = "close"
    elif roll < 0.14:
        case.pieces = []
        case.note += ", nothing at all"
    else:
        case.pieces = [(0.0, interim + head + payload)]
    after = rng.random()
    if after < 0.1:
        case.after = "reset"
    elif after < 0.3:
        case.after = "keep"
    elif after < 0.35:
        case.after = "hold"
    case.note = f"{case.note}, then {case.after}".lstrip(", ")
    return case


@dataclass
class Reading:
    """One parser's reading of a response to GET: status and body, or why not."""

    status: int | None = None
    body: bytes = b""
    error: str | None = None


def _h11(data: bytes, closes: bool) -> Reading:
    conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=64 * 1024)
    conn.send(h11.Request(method="GET", target="/x", headers=[("Host", "b")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    if closes:
        conn.receive_data(b"")
    reading = Reading()
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                reading.status = event.status_code
            elif isinstance(event, h11.Data):
                reading.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if conn.trailing_data[0]:
                    # A 204 with a body, a Content-Length short of the body: the
                    # extra bytes make the answer ambiguous (pass it, or 502).
                    reading.error = f"{len(conn.trailing_data[0])} bytes after the response"
                return reading
            else:
                reading.error = f"h11 stopped at {event!r}"
                return reading
    except h11.RemoteProtocolError as exc:
        reading.error = f"h11: {exc}"
    return reading


class _Collect:
    def __init__(self) -> None:
        self.body = b""
        self.complete = False
        self.head_complete = False
        self.framed = False  # Content-Length or Transfer-Encoding present

    def on_header(self, name: bytes, _value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.head_complete = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


def _httptools(data: bytes, closes: bool) -> Reading:
    rest = data
    while True:  # interim answers first, each its own message, read on its own
        interim = re.match(rb"HTTP/1\.[01] 1(?!01)\d\d ", rest) is not None
        if interim:
            end = rest.find(b"\r\n\r\n")
            if end < 0:
                return Reading(error="httptools: interim without an end")
            chunk, rest = rest[: end + 4], rest[end + 4 :]
        else:
            chunk = rest
        collect = _Collect()
        parser = httptools.HttpResponseParser(collect)
        try:
            parser.feed_data(chunk)
            if closes and not collect.complete and not interim:
                parser.feed_data(b"")
        except httptools.HttpParserError as exc:
            # Bytes after a whole response (a 304's stray body) are the next
            # message's problem, not this one's.
            if not collect.complete:
                return Reading(error=f"httptools: {exc}")
        status = parser.get_status_code()
        if interim:
            if not collect.complete:
                return Reading(error="httptools: a broken interim answer")
            continue
        # httptools has no end-of-input call: a body delimited by the close is
        # whole when the head was and nothing framed the body otherwise.
        if not collect.complete and not (closes and collect.head_complete and not collect.framed):
            return Reading(error="httptools: incomplete")
        return Reading(status=status, body=collect.body)


def reference(case: ResponseCase, read_timeout: float) -> Reading:
    """The answer a correct proxy passes on, or a Reading with an error if there is none."""
    if case.pauses >= read_timeout:
        return Reading(error="the head comes slower than the read timeout")
    closes = case.after in ("close", "reset")
    if case.after == "reset":
        return Reading(error="reset")
    strict, fast = _h11(case.data, closes), _httptools(case.data, closes)
    if strict.error or fast.error:
        return Reading(error=strict.error or fast.error)
    if (strict.status, strict.body) != (fast.status, fast.body):
        return Reading(error=f"h11 reads {strict.status}, httptools {fast.status}")
    if strict.status is None or strict.status == 101 or not 100 <= strict.status <= 599:
        return Reading(error=f"status {strict.status}")
    return strict
