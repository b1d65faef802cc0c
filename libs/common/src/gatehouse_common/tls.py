"""Server TLS contexts for a listener: several certificates chosen by SNI, reloaded live.

Python's :mod:`ssl` does the TLS; this module only decides which certificate a
handshake gets and when the files are read again:

- every certificate gets its own :class:`ssl.SSLContext` (TLS 1.2 at least,
  Python's modern cipher list, no renegotiation, ALPN as the listener speaks);
  the first is the default, and its ``sni_callback`` switches a handshake to
  the context whose certificate names the server name the client sent (its
  DNS subject alternative names, ``*.example.com`` matching one label; the
  common name only when there are none);
- a handshake asks :meth:`CertificateStore.context` for the context to start
  with: at most every ``reload_check_interval`` seconds that looks at the files'
  modification times, and after SIGHUP (:meth:`request_reload`) it reads them
  again whatever the times say. A connection already open keeps the context it
  was made with, so a reload drops nothing; a file that fails to load (a key
  half-written) keeps the previous certificates and is tried again later.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from gatehouse_common.listeners import CertificateFiles, TlsSpec

logger = logging.getLogger(__name__)

SniCallback = Callable[[ssl.SSLObject, str | None, ssl.SSLContext], int | None]


def server_context(alpn: Sequence[str]) -> ssl.SSLContext:
    """A server context with modern defaults and no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Python's server default cipher list already leaves out RSA key exchange,
    # CBC-SHA1 and everything weaker; renegotiation started by a client costs
    # the server a handshake each time and is refused.
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def certificate_names(cert_file: Path) -> list[str]:
    """The DNS names a certificate is for, lower case (wildcards kept as ``*.x``)."""
    leaf = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [
            str(attribute.value).lower()
            for attribute in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]


@dataclass(frozen=True, slots=True)
class _Generation:
    """One reading of the files: the contexts and the names that choose them."""

    default: ssl.SSLContext
    exact: dict[str, ssl.SSLContext]
    wildcard: dict[str, ssl.SSLContext]  # "example.com" for "*.example.com"

    def choose(self, server_name: str) -> ssl.SSLContext:
        name = server_name.lower().rstrip(".")
        found = self.exact.get(name)
        if found is None:
            _, _, parent = name.partition(".")
            found = self.wildcard.get(parent) if parent else None
        return found or self.default

    def sni_callback(
        self, ssl_object: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext
    ) -> None:
        if server_name:
            chosen = self.choose(server_name)
            if chosen is not self.default:
                ssl_object.context = chosen


def _load(certificates: Sequence[CertificateFiles], alpn: Sequence[str]) -> _Generation:
    contexts: list[ssl.SSLContext] = []
    exact: dict[str, ssl.SSLContext] = {}
    wildcard: dict[str, ssl.SSLContext] = {}
    for files in certificates:
        context = server_context(alpn)
        try:
            context.load_cert_chain(files.cert_file, files.key_file)
        except OSError as exc:  # ssl's own errors name no file
            raise ValueError(f"{files.cert_file} with {files.key_file}: {exc}") from exc
        contexts.append(context)
        for name in certificate_names(files.cert_file):
            if name.startswith("*."):
                wildcard.setdefault(name[2:], context)
            else:
                exact.setdefault(name, context)
    generation = _Generation(default=contexts[0], exact=exact, wildcard=wildcard)
    # several certificates: the default context picks by the client's server name
    if len(contexts) > 1:
        contexts[0].sni_callback = generation.sni_callback
    return generation


class CertificateStore:
    """The TLS contexts of one listener, reloaded when the files change or on request."""

    def __init__(
        self, spec: TlsSpec, *, alpn: Sequence[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not spec.certificates:
            raise ValueError("a TLS listener needs at least one certificate")
        self._spec = spec
        self._alpn = tuple(alpn)
        self._clock = clock
        self._stamps = self._file_stamps()
        self._generation = _load(spec.certificates, self._alpn)  # fails loudly at start
        self._next_check = clock() + spec.reload_check_interval
        self._reload_requested = False
        self.reloads = 0

    def context(self) -> ssl.SSLContext:
        """The context a new handshake starts with (after a due reload)."""
        now = self._clock()
        if self._reload_requested or now >= self._next_check:
            self._next_check = now + self._spec.reload_check_interval
            self._maybe_reload()
        return self._generation.default

    def choose(self, server_name: str) -> ssl.SSLContext:
        """The context a handshake naming ``server_name`` ends up with."""
        return self._generation.choose(server_name)

    def request_reload(self) -> None:
        """Read the files again at the next handshake (SIGHUP)."""
        self._reload_requested = True

    def _file_stamps(self) -> tuple[tuple[int, int] | None, ...]:
        stamps: list[tuple[int, int] | None] = []
        for files in self._spec.certificates:
            for path in (files.cert_file, files.key_file):
                try:
                    stat = path.stat()
                except OSError:
                    stamps.append(None)
                else:
                    stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def _maybe_reload(self) -> None:
        stamps = self._file_stamps()
        if not self._reload_requested and stamps == self._stamps:
            return
        self._reload_requested = False
        try:
            self._generation = _load(self._spec.certificates, self._alpn)
        except (OSError, ssl.SSLError, ValueError) as exc:
            # keep serving the previous certificates; the changed stamps are not
            # recorded, so the next check tries again (a key written after its cert)
            logger.error("TLS certificates not reloaded, keeping the previous ones: %s", exc)
            return
        self._stamps = stamps
        self.reloads += 1
        logger.info("TLS certificates reloaded (%d file(s))", len(stamps))
