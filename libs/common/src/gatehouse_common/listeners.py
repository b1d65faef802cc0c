"""What each extra listening socket speaks, as plain picklable values.

The main port and the gateway's admin port speak plain HTTP/1.1 as they
always have. A :class:`ListenerSpec` describes a further socket: TLS with one
or more certificates (chosen by SNI), HTTP/2 by ALPN on TLS, HTTP/2 with prior
knowledge (``h2c``) on plain sockets, a plain socket that only redirects to
HTTPS, and HSTS on TLS answers. Services build these from their own config
(the gateway's ``listeners:`` section); :func:`gatehouse_common.server.serve`
binds them and hands them to every worker inside the uvicorn config, which is
pickled into worker processes, so these are frozen dataclasses, not contexts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A certificate chain (PEM, leaf first) and its private key (PEM)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """The certificates of a TLS listener; the first is the default one.

    ``reload_check_interval`` is how often, at most, a new handshake looks at
    the files' modification times; SIGHUP makes the next handshake reload.
    """

    certificates: tuple[CertificateFiles, ...]
    reload_check_interval: float = 2.0


@dataclass(frozen=True, slots=True)
class HstsSpec:
    """``Strict-Transport-Security`` on every answer of a TLS listener."""

    max_age: int = 31_536_000
    include_subdomains: bool = False

    def header_value(self) -> bytes:
        value = b"max-age=%d" % self.max_age
        return value + b"; includeSubDomains" if self.include_subdomains else value


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """One more socket served by the same app in every worker."""

    host: str
    port: int
    tls: TlsSpec | None = None
    # HTTP/2 by ALPN on a TLS listener
    http2: bool = True
    # HTTP/2 with prior knowledge (the connection preface) on a plain listener
    h2c: bool = False
    # a plain listener answering every request with 308 to https on this port
    redirect_to_https: int | None = None
    hsts: HstsSpec | None = field(default=None)

    @property
    def plain_http1(self) -> bool:
        """Nothing but HTTP/1.1 as the main port speaks it."""
        return self.tls is None and not self.h2c and self.redirect_to_https is None

    def bound_to(self, port: int) -> ListenerSpec:
        """The same listener on the port its socket got (``port: 0`` asks for any)."""
        return replace(self, port=port)
