"""A local certificate authority and server certificates it signs, for the demo and tests.

Nothing here is for production certificates (use your CA or ACME): this makes
what ``make demo`` needs to answer on https://localhost:8443 and what the tests
need to check SNI and reloading. Keys are ECDSA P-256 (fast handshakes,
accepted by every client); the CA's key file is written readable by its owner
only.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LocalCA:
    """A CA certificate and key, as PEM files."""

    cert_file: Path
    key_file: Path

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key_file} is not an EC key")
        return cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(pem)


def make_ca(
    directory: Path, name: str = "Gatehouse local CA", days: int = 3650, *, stem: str = "ca"
) -> LocalCA:
    """A new self-signed CA in ``directory`` (``<stem>.pem``, ``<stem>-key.pem``)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + days * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = LocalCA(directory / f"{stem}.pem", directory / f"{stem}-key.pem")
    _write_key(ca.key_file, key)
    ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca


def issue(
    ca: LocalCA,
    names: Sequence[str],
    cert_file: Path,
    key_file: Path,
    days: int = 825,
    *,
    common_name: str | None = None,
    client_auth: bool = False,
) -> None:
    """A server certificate for ``names`` (DNS names, wildcards and IP addresses)
    signed by ``ca``, written as ``cert_file`` (leaf then CA) and ``key_file``.

    ``client_auth`` makes it good for client authentication too (mTLS to a
    backend), where it may name no host: then ``common_name`` names it.
    """
    if not names and not common_name:
        raise ValueError("a certificate needs at least one name")
    ca_cert, ca_key = ca._load()
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + days * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    _write_key(key_file, key)
    cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )


@dataclass(frozen=True, slots=True)
class LocalTls:
    """A local CA and one server certificate it signed, as files."""

    ca: LocalCA
    cert_file: Path
    key_file: Path
    created: bool  # made just now (else found from an earlier start)


def ensure_local_tls(directory: Path, names: Sequence[str]) -> LocalTls:
    """The CA and server certificate in ``directory``, made on first use and kept after.

    Kept so that a browser or system trust store told once to trust the CA
    goes on trusting it; the certificate is made again only when missing.
    """
    ca = LocalCA(directory / "ca.pem", directory / "ca-key.pem")
    cert_file, key_file = directory / "server.pem", directory / "server-key.pem"
    created = False
    if not (ca.cert_file.exists() and ca.key_file.exists()):
        ca = make_ca(directory)
        created = True
    if created or not (cert_file.exists() and key_file.exists()):
        issue(ca, names, cert_file, key_file)
        created = True
    return LocalTls(ca, cert_file, key_file, created)
