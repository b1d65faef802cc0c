"""The certificate of the benchmark's HTTPS targets.

nginx and the gateway terminate TLS with the same certificate and key, made
per run in the run's work folder by the same code that makes the demo's
(``gatehouse_common.devcerts``: a local CA and an ECDSA P-256 certificate it
signs, key in PKCS#8, which nginx, Python's ``ssl`` and granian all read), for
``127.0.0.1`` and ``localhost``. wrk does not verify certificates; the
harness's own readiness checks do, against the run's CA, so a target serving
the wrong certificate fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gatehouse_common.devcerts import ensure_local_tls

NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertFiles:
    """The server's certificate chain and key, and the CA a client trusts them by."""

    cert: Path
    key: Path
    ca: Path


def make_certificates(folder: Path) -> CertFiles:
    """A new local CA and a certificate for :data:`NAMES` in ``folder`` (a fresh one)."""
    made = ensure_local_tls(folder, list(NAMES))
    return CertFiles(cert=made.cert_file, key=made.key_file, ca=made.ca.cert_file)
