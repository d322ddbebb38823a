"""Throwaway certificates for TLS test brokers: a CA, and certificates it issues, as PEM files."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Issued:
    """A certificate with its private key."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.cert, self.key = cert, key

    @property
    def name(self) -> str:
        return self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    def sha256(self) -> bytes:
        """The fingerprint a client pins: SHA-256 over the DER certificate."""
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).digest()

    def write(self, cert_path: Path, key_path: Path | None = None) -> Path:
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        if key_path is not None:
            key_path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
            key_path.chmod(0o600)
        return cert_path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _build(subject: str, issuer: Issued | None, ca: bool, san: list | None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(_name(issuer.name) if issuer else _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_ca(name: str) -> Issued:
    """A self-signed CA without a key-usage extension (like Bambu Lab's printer CA)."""
    return _build(name, None, ca=True, san=None)


def issue(ca: Issued, name: str, san: list | None = None) -> Issued:
    """A server certificate named ``name`` in its CN (and ``san``, if given), signed by ``ca``."""
    return _build(name, ca, ca=False, san=san)
