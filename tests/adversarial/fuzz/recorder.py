"""A backend that records the exact bytes of every connection it accepts.

It answers the first request it can frame (httptools) with a small JSON body
naming itself and ``Connection: close``, then keeps reading for a moment so
bytes the gateway sends after that request (a smuggled second one) are
recorded too, and closes. Each connection is one :class:`Recorded`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import httptools
from support.socket_server import ThreadedSocketServer

LINGER = 0.3


@dataclass
class Recorded:
    backend: str
    data: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)


class _Done:
    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


class RecordingBackend(ThreadedSocketServer):
    def __init__(self, name: str) -> None:
        self.name = name
        self.records: list[Recorded] = []
        self.lock = threading.Lock()
        super().__init__()

    def accepted(self, conn: socket.socket) -> tuple[socket.socket, Recorded]:
        record = Recorded(self.name)
        with self.lock:
            self.records.append(record)
        return conn, record

    def handle(self, conn: socket.socket, record: Recorded) -> None:  # type: ignore[override]
        try:
            with conn, contextlib.suppress(OSError):
                self._exchange(conn, record)
        finally:
            record.done.set()

    def _exchange(self, conn: socket.socket, record: Recorded) -> None:
        done = _Done()
        parser = httptools.HttpRequestParser(done)
        conn.settimeout(5.0)
        status = 200
        while not done.complete:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                status = 408
                break
            if not chunk:
                return
            record.data += chunk
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserError:
                status = 400
                break
            except httptools.HttpParserUpgrade:
                break
        body = json.dumps({"backend": self.name, "bytes": len(record.data)}).encode()
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, len(body), body)
        )
        conn.settimeout(LINGER)
        deadline = time.monotonic() + LINGER
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            record.data += chunk

    def taken_since(self, start: int) -> list[Recorded]:
        with self.lock:
            return self.records[start:]

    def count(self) -> int:
        with self.lock:
            return len(self.records)
