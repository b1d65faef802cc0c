"""Backends made of raw sockets: each connection is handed to a script.

For answers no real server would give (a status of 999, an unasked-for 101,
100 MB of headers, one header line every two seconds) and, for the fuzzers,
a backend that records the exact bytes it received.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from support.socket_server import ThreadedSocketServer

Script = Callable[[socket.socket, bytes], None]


def read_head(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    """The bytes up to the end of a request head (or whatever came before a close)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class ScriptedBackend(ThreadedSocketServer):
    """A listening socket; every connection runs ``script(conn, head)`` in a thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        super().__init__()

    def handle(self, conn: socket.socket) -> None:  # type: ignore[override]
        # OSError: the gateway hung up, which is what these backends are for.
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            self.script(conn, read_head(conn))
