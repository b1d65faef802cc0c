"""A throwaway CA, certificates it signs, and a small HTTPS backend, for upstream TLS tests.

The backend is a real TLS server (Python's ``ssl`` over a socket, one thread
per connection, keep-alive): it answers every request with a JSON body naming
the client certificate it was shown, so a test can see mTLS arrive. The
WebSocket backend does the same over ``wss``, then echoes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from support.gateway import gateway_route
from support.socket_server import ThreadedSocketServer
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_serve

from gatehouse_common import devcerts


@dataclass
class Issued:
    cert_file: Path
    key_file: Path


class TestCA:
    """A self-signed CA in ``directory`` (gatehouse_common.devcerts) that issues
    leaf certificates good for server and client authentication."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.local = devcerts.make_ca(directory, name, days=1, stem=f"{name}-ca")
        self.cert_file = self.local.cert_file

    def issue(
        self, common_name: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
    ) -> Issued:
        """A leaf certificate for ``common_name`` naming ``dns`` and ``ips``."""
        issued = Issued(
            self.directory / f"{common_name}.pem", self.directory / f"{common_name}-key.pem"
        )
        devcerts.issue(
            self.local,
            [*dns, *ips],
            issued.cert_file,
            issued.key_file,
            days=1,
            common_name=common_name,
            client_auth=True,
        )
        return issued


def server_context(server: Issued, client_ca: TestCA | None) -> ssl.SSLContext:
    """A backend's context; with ``client_ca`` it requires a certificate that CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert_file, server.key_file)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca.cert_file)
    return context


class _Backend(Protocol):
    url: str

    def close(self) -> None: ...


B = TypeVar("B", bound=_Backend)


class TLSBackends(Generic[B]):
    """The CAs, certificates and backends both upstream TLS test modules use, made anew.

    ``ca`` signs the backends' certificates; ``plain`` shows one for
    localhost/127.0.0.1, ``mtls`` the same and wants a client certificate
    ``clients_ca`` signed (``client_files``), ``named`` one for
    ``backend.internal`` only; ``other_ca`` signs nothing a backend shows.
    """

    def __init__(self, directory: Path, backend: Callable[[Issued, TestCA | None], B]) -> None:
        self.ca = TestCA(directory, "backends")
        self.other_ca = TestCA(directory, "elsewhere")
        self.clients_ca = TestCA(directory, "gateways")
        server = self.ca.issue("backend", dns=("localhost",), ips=("127.0.0.1",))
        self.client_cert = self.clients_ca.issue("gateway-1")
        self.plain = backend(server, None)
        self.mtls = backend(server, self.clients_ca)
        self.named = backend(self.ca.issue("named", dns=("backend.internal",)), None)

    def client_files(self) -> dict[str, str]:
        """The client certificate as a route's ``tls`` block names it."""
        return {
            "cert_file": str(self.client_cert.cert_file),
            "key_file": str(self.client_cert.key_file),
        }

    def close(self) -> None:
        for backend in (self.plain, self.mtls, self.named):
            backend.close()


def tls_route(name: str, url: str, **tls: Any) -> dict[str, Any]:
    """A route for host ``<name>.test`` to ``url`` with this ``tls`` block, never retried."""
    return gateway_route([url], name=name, hosts=[f"{name}.test"], tls=tls, retries={"attempts": 0})


class TLSBackend(ThreadedSocketServer):
    """An HTTPS backend on 127.0.0.1; with ``client_ca`` it requires a client certificate."""

    scheme = "https"

    def __init__(self, server: Issued, client_ca: TestCA | None = None) -> None:
        self.context = server_context(server, client_ca)
        self.handshake_failures: list[str] = []
        super().__init__()

    def handle(self, raw: socket.socket) -> None:  # type: ignore[override]
        raw.settimeout(30)
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshake_failures.append(getattr(exc, "reason", None) or repr(exc))
            # read what the client sent until it hangs up, as servers linger before
            # closing: a close with unread bytes would reset the connection, and the
            # client could lose the TLS alert that says why
            with contextlib.suppress(OSError):
                while raw.recv(65536):
                    pass
            raw.close()
            return
        with conn, contextlib.suppress(OSError):
            peer = conn.getpeercert()
            subject = dict(item[0] for item in peer["subject"]) if peer else {}
            body = json.dumps({"client_cn": subject.get("commonName")}).encode()
            answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            answer += b"content-length: %d\r\n\r\n%b" % (len(body), body)
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                data = data.split(b"\r\n\r\n", 1)[1]  # requests here carry no body
                conn.sendall(answer)


class TLSWebSocketBackend:
    """A ``wss`` echo on 127.0.0.1 (the ``websockets`` library's threaded server).

    Its first message names the client certificate it was shown, as
    :class:`TLSBackend` does; after that every message comes back unchanged.
    With ``client_ca`` it requires a client certificate that CA signed.
    """

    def __init__(self, server: Issued, client_ca: TestCA | None = None) -> None:
        self.server = ws_serve(self._echo, "127.0.0.1", 0, ssl=server_context(server, client_ca))
        self.url = f"https://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _echo(connection: ServerConnection) -> None:
        peer = (
            connection.socket.getpeercert()
            if isinstance(connection.socket, ssl.SSLSocket)
            else None
        )
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        connection.send(json.dumps({"event": "connected", "client_cn": subject.get("commonName")}))
        for message in connection:
            connection.send(message)

    def close(self) -> None:
        self.server.shutdown()
