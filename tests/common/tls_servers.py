"""Certificates, a service process with TLS/HTTP/2 listeners, and a raw HTTP/2 client.

The service is common/tls_app.py in its own process (``serve()`` as every
service runs). :class:`RawH2` speaks HTTP/2 over a socket with the ``h2``
library's client side and its checks turned off, so a test can send what a
hostile client would, and reads the server's frames back as ``h2`` events.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
from support.processes import REPO_ROOT, ServiceProcess, free_port, python_module

from gatehouse_common.devcerts import LocalCA, issue, make_ca


@dataclass(frozen=True)
class Certs:
    """A CA and two server certificates it signed: ``a`` (the default) and ``b``."""

    ca: LocalCA
    a: tuple[Path, Path]  # localhost, 127.0.0.1, a.test
    b: tuple[Path, Path]  # b.test, *.wild.test

    def pairs(self) -> list[list[str]]:
        return [[str(self.a[0]), str(self.a[1])], [str(self.b[0]), str(self.b[1])]]


def make_certs(directory: Path) -> Certs:
    ca = make_ca(directory / "ca")
    a = (directory / "a.pem", directory / "a-key.pem")
    b = (directory / "b.pem", directory / "b-key.pem")
    issue(ca, ["localhost", "127.0.0.1", "a.test"], *a)
    issue(ca, ["b.test", "*.wild.test"], *b)
    return Certs(ca, a, b)


def tls_app(listeners: Sequence[dict[str, Any]], **env: str) -> ServiceProcess:
    """The test service on a free main port, with ``listeners`` (ports filled in by caller)."""
    port = free_port()
    pythonpath = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")])
    )
    return ServiceProcess(
        name=f"tls-app-{port}",
        command=python_module("common.tls_app"),
        port=port,
        env={
            "PYTHONPATH": pythonpath,
            "GATEHOUSE_TLS_APP_PORT": str(port),
            "GATEHOUSE_TLS_APP_LOG_LEVEL": "info",
            "GATEHOUSE_TLS_APP_LISTENERS": json.dumps(list(listeners)),
            **{f"GATEHOUSE_TLS_APP_{name.upper()}": value for name, value in env.items()},
        },
    )


def client_context(ca: LocalCA, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def peer_names(sock: ssl.SSLSocket) -> list[str]:
    """The DNS names of the certificate the server presented."""
    cert = sock.getpeercert()
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]


@contextmanager
def tls_socket(
    port: int, ca: LocalCA, server_name: str = "localhost", alpn: Sequence[str] = ("h2",)
) -> Iterator[ssl.SSLSocket]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_context(ca, alpn).wrap_socket(raw, server_hostname=server_name) as sock:
        yield sock


class RawH2:
    """An HTTP/2 client connection that sends what it is told, checks off."""

    def __init__(self, sock: socket.socket, **settings: int) -> None:
        self.sock = sock
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config)
        if settings:
            self.conn.local_settings.update(settings)
        self.conn.initiate_connection()
        self.flush()
        self.closed = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self,
        path: str,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        end: bool = True,
        authority: str = "localhost",
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            *[(n.encode(), v.encode()) for n, v in headers],
        ]
        self.conn.send_headers(stream_id, head, end_stream=end)
        self.flush()
        return stream_id

    def events(self, timeout: float = 10.0) -> list[h2.events.Event]:
        """The events of the next bytes read ([] and ``closed`` once the server closed)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return []
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def until(self, predicate: Any, timeout: float = 10.0) -> list[h2.events.Event]:
        """Read events until one satisfies ``predicate``, the connection ends or
        ``timeout`` passes; all of them."""
        seen: list[h2.events.Event] = []
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            new = self.events(max(0.01, deadline - time.monotonic()))
            seen += new
            if any(predicate(event) for event in new):
                break
        return seen

    def response(self, stream_id: int, timeout: float = 10.0) -> tuple[int, bytes]:
        """Status and body of ``stream_id``, acknowledging its data as it comes."""
        status, body, done = 0, b"", False
        while not done and not self.closed:
            for event in self.events(timeout):
                if getattr(event, "stream_id", None) != stream_id:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers or [])[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length or 0, stream_id
                    )
                    self.flush()
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    done = True
        return status, body


def goaway(events: Sequence[h2.events.Event]) -> h2.events.ConnectionTerminated | None:
    for event in events:
        if isinstance(event, h2.events.ConnectionTerminated):
            return event
    return None


def json_body(body: bytes) -> Any:
    return json.loads(body)
