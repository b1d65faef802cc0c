"""A self-signed certificate for the benchmark's HTTPS targets.

nginx and the gateway terminate TLS with the same certificate and key, made
per run into the run's work folder: an ECDSA P-256 key (what a modern public
certificate uses, and what makes the handshake cheap) for ``127.0.0.1`` and
``localhost``. wrk does not verify certificates; the harness's own readiness
checks do, against this certificate, so a target serving the wrong one fails.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

COMMON_NAME = "gatehouse-bench"


@dataclass(frozen=True)
class CertFiles:
    """Where the PEM files are: the certificate (also the CA to trust) and its key."""

    cert: Path
    key: Path


def self_signed_pem(now: datetime.datetime | None = None, days: int = 2) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 private key PEM) for 127.0.0.1 and localhost.

    PKCS#8 because granian reads no other key format, and nginx and Python's
    ``ssl`` read it too.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_self_signed(folder: Path) -> CertFiles:
    """Write a fresh certificate and key into ``folder`` (the key readable by its owner only)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed_pem()
    files = CertFiles(cert=folder / "bench-cert.pem", key=folder / "bench-key.pem")
    files.cert.write_bytes(cert_pem)
    files.key.touch(mode=0o600)
    files.key.write_bytes(key_pem)
    return files
