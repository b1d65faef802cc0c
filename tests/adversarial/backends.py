"""Backends made of raw sockets: each connection is handed to a script.

For answers no real server would give (a status of 999, an unasked-for 101,
100 MB of headers, one header line every two seconds) and, for the fuzzers,
a backend that records the exact bytes it received.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

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


class ScriptedBackend:
    """A listening socket; every connection runs ``script(conn, head)`` in a thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopped = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        # OSError: the gateway hung up, which is what these backends are for.
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            self.script(conn, read_head(conn))

    def close(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.sock.close()
