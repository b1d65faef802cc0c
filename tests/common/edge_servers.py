"""A uvicorn server with the edge protocol, in a thread of the test process, and raw
socket helpers to talk to it as a hostile client would."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from support.processes import free_port

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.edge_protocol import CoalescingEdgeHttpToolsProtocol
from gatehouse_common.server import EdgeConfig


@contextmanager
def edge_server(
    app: Any, limits: EdgeLimits, protocol: type = CoalescingEdgeHttpToolsProtocol
) -> Iterator[int]:
    """Serve ``app`` on a free port with ``limits``; yields the port."""
    port = free_port()
    config = EdgeConfig(
        app,
        edge_limits=limits,
        host="127.0.0.1",
        port=port,
        http=protocol,
        loop="uvloop",
        log_config=None,
        lifespan="off",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_answers(conn: socket.socket, count: int) -> list[Answer]:
    """``count`` HTTP/1.1 responses with a Content-Length, read in order from ``conn``."""
    answers: list[Answer] = []
    data = b""
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before a whole head: {data!r}")
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the whole body")
            data += chunk
        answers.append(Answer(int(lines[0].split()[1]), headers, data[:length]))
        data = data[length:]
    return answers


def read_answer(conn: socket.socket) -> Answer:
    return read_answers(conn, 1)[0]


def closed_by_server(conn: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the server ends the connection (EOF or reset) within ``timeout``,
    whatever else it still sends."""
    conn.settimeout(timeout)
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True
