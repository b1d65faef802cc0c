"""Raw HTTP/1.1 over sockets, for attacks a client library would normalise away.

httpx and urllib refuse or rewrite most of what these tests send (two Host
headers, ``..`` in a path, underscores, bare LF, a trailer), so requests are
written as bytes and the answer is parsed here, loosely enough to describe
whatever came back in a failure message. Every read has a deadline: a test
never hangs on a gateway that does.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psutil


class NoResponse(Exception):
    """The connection closed, was reset or timed out before a whole response head came."""


@dataclass
class RawResponse:
    """One parsed response; ``complete`` is False when its body was cut short."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool = True
    head: bytes = b""
    trailing: bytes = b""  # bytes after this response on the wire (a second response?)

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        """What came back, short enough for an assertion message."""
        text = self.body[:600].decode("latin-1")
        return f"{self.status} {self.reason.decode('latin-1')} ({len(self.body)} bytes): {text}"

    @property
    def echo(self) -> dict[str, Any] | None:
        """The fake backend's echo if this answer came from one, else None."""
        try:
            data = self.json()
        except ValueError:
            return None
        if isinstance(data, dict) and "instance" in data and "headers" in data:
            return data
        return None


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Reader:
    """Buffered reads from a socket with one overall deadline."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.buffer = b""
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no more bytes before the deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:  # reset: what was read stays readable
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def until(self, marker: bytes, limit: int = 1 << 20) -> bytes | None:
        while marker not in self.buffer:
            if len(self.buffer) > limit or not self._fill():
                return None
        index = self.buffer.index(marker) + len(marker)
        found, self.buffer = self.buffer[:index], self.buffer[index:]
        return found

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def rest(self) -> bytes:
        while self._fill():
            pass
        found, self.buffer = self.buffer, b""
        return found


def parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise NoResponse(f"not a status line: {lines[0][:200]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


def read_response(reader: Reader, *, method: str = "GET") -> RawResponse:
    """The next response on ``reader`` (interim 1xx answers are skipped)."""
    while True:
        try:
            head = reader.until(b"\r\n\r\n")
        except TimeoutError:
            raise NoResponse(
                f"no response head before the deadline; got {reader.buffer[:300]!r}"
            ) from None
        if head is None:
            raise NoResponse(f"closed before a whole response head; got {reader.buffer[:300]!r}")
        status, reason, headers = parse_head(head)
        if 100 <= status < 200 and status != 101:
            continue
        break
    response = RawResponse(status, reason, headers, b"", head=head)
    length = response.header("content-length")
    chunked = "chunked" in (response.header("transfer-encoding") or "").lower()
    try:
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return response
        if chunked:
            body = b""
            while True:
                size_line = reader.until(b"\r\n")
                if size_line is None:
                    response.complete = False
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while reader.until(b"\r\n") not in (None, b"\r\n"):
                        pass  # trailer fields
                    break
                chunk = reader.exactly(size + 2)
                if chunk is None:
                    response.complete = False
                    break
                body += chunk[:-2]
            response.body = body
        elif length is not None:
            data = reader.exactly(int(length))
            if data is None:
                response.body, response.complete = reader.rest(), False
            else:
                response.body = data
        else:
            response.body = reader.rest()
    except TimeoutError:
        response.body, response.complete = reader.buffer, False
    return response


def exchange(
    url: str,
    data: bytes,
    *,
    timeout: float = 15.0,
    method: str = "GET",
    linger: float = 0.0,
) -> RawResponse:
    """Send ``data`` on a new connection and read one response.

    ``linger`` seconds more are spent reading what follows the response (a
    second answer would mean the gateway saw a second request).
    """
    with connect(url, timeout) as sock:
        # On a send error the answer may be there all the same (an early 4xx, then a close).
        with contextlib.suppress(OSError):
            sock.sendall(data)
        reader = Reader(sock, timeout)
        response = read_response(reader, method=method)
        if linger:
            reader.deadline = time.monotonic() + linger
            try:
                response.trailing = reader.buffer + reader.rest()
            except TimeoutError:
                response.trailing = reader.buffer
        return response


def request_bytes(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    """A request as bytes; headers are written exactly as given (spelling, order, repeats)."""
    lines = [f"{method} {target} {version}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(
    url: str,
    target: str,
    host: str,
    extra: list[tuple[str, str]] | None = None,
    *,
    timeout: float = 15.0,
) -> RawResponse:
    """A plain GET with ``Connection: close`` and the headers in ``extra``, as bytes."""
    headers = [("Host", host), *(extra or []), ("Connection", "close")]
    return exchange(url, request_bytes("GET", target, headers), timeout=timeout)


def readable(sock: socket.socket) -> bool:
    ready, _, _ = select.select([sock], [], [], 0)
    return bool(ready)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (uvicorn workers)."""
    process = psutil.Process(pid)
    total = int(process.memory_info().rss)
    for child in process.children(recursive=True):
        try:
            total += int(child.memory_info().rss)
        except psutil.Error:
            continue
    return total


@dataclass
class Sent:
    """What a streaming sender managed to send, and what came back meanwhile."""

    sent: int = 0
    received: bytes = b""
    error: str | None = None
    closed: bool = False
    notes: list[str] = field(default_factory=list)


def stream_until_refused(
    sock: socket.socket,
    first: bytes,
    filler: bytes,
    total: int,
    *,
    deadline: float,
) -> Sent:
    """Send ``first`` then ``filler`` repeatedly up to ``total`` bytes, reading any answer.

    Stops when the peer answers, closes or resets, or at ``deadline``
    (monotonic). The answer is read between writes, so a 4xx sent before a
    reset is still seen.
    """
    result = Sent()
    sock.settimeout(5.0)
    try:
        sock.sendall(first)
        result.sent += len(first)
        while result.sent < total and time.monotonic() < deadline:
            if readable(sock):
                data = sock.recv(65536)
                if not data:
                    result.closed = True
                    break
                result.received += data
                break
            sock.sendall(filler)
            result.sent += len(filler)
    except OSError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    # Whatever answer is on its way (or already queued) is read now.
    sock.settimeout(5.0)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                result.closed = True
                break
            result.received += data
    except TimeoutError:
        pass
    except OSError as exc:
        result.closed = True
        result.notes.append(f"{type(exc).__name__}: {exc}")
    return result


def status_of(received: bytes) -> int | None:
    """The status code at the start of ``received``, if it starts with a status line."""
    if not received.startswith(b"HTTP/1."):
        return None
    parts = received.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
