"""A listening socket on 127.0.0.1 serving each connection in a thread of its own.

The raw-socket test backends (scripted, mutating, recording, TLS) differ only
in what they do with a connection; the accept loop and its shutdown are here once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


class ThreadedSocketServer:
    """``handle`` runs for every accepted connection; ``close`` stops accepting."""

    scheme = "http"

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"{self.scheme}://127.0.0.1:{self.sock.getsockname()[1]}"
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
            threading.Thread(target=self.handle, args=self.accepted(conn), daemon=True).start()

    def accepted(self, conn: socket.socket) -> tuple[Any, ...]:
        """The arguments ``handle`` gets, made in the accept loop (in accept order)."""
        return (conn,)

    def handle(self, *args: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.sock.close()
