"""Throwaway certificates for tests: a CA with server and client certificates, or a self-signed one.

Made with ``cryptography`` (from printfarm[dev]; EC P-256, valid for a day); keys are written with mode 0600.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_NAME = "printfarm test CA"
LOOPBACK_SAN = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, signing_key, ca=False, san=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _write(path: Path, cert=None, key=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def _key():
    return ec.generate_private_key(ec.SECP256R1())


class Issued:
    """A certificate and its key, for tests that need more than make_pki's fixed set."""

    def __init__(self, cert: x509.Certificate, key):
        self.cert, self.key = cert, key

    @property
    def name(self) -> str:
        return self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    def sha256(self) -> bytes:
        """The fingerprint a client pins: SHA-256 over the DER certificate."""
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).digest()

    def write(self, cert_path: Path, key_path: Path | None = None) -> Path:
        _write(cert_path, cert=self.cert)
        if key_path is not None:
            _write(key_path, key=self.key)
        return cert_path


def make_ca(name: str = CA_NAME) -> Issued:
    """A self-signed CA without a key-usage extension (as Bambu Lab's printer CA has none)."""
    key = _key()
    return Issued(_cert(name, name, key, key, ca=True), key)


def issue(ca: Issued, name: str, san: list | None = None) -> Issued:
    """A server certificate named ``name`` (CN only, unless ``san``), signed by ``ca``."""
    key = _key()
    return Issued(_cert(name, ca.name, key, ca.key, san=san), key)


def make_pki(d: Path, client_cn: str = "client") -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files:
    keys ``ca``, ``server_cert``, ``server_key``, ``cert``, ``key`` (the client's)."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert(CA_NAME, CA_NAME, ca_key, ca_key, ca=True)
    server = _cert("127.0.0.1", CA_NAME, server_key, ca_key, san=LOOPBACK_SAN)
    client = _cert(client_cn, CA_NAME, client_key, ca_key)
    return {
        "ca": _write(d / "ca.crt", cert=ca), "server_cert": _write(d / "server.crt", cert=server),
        "server_key": _write(d / "server.key", key=server_key), "cert": _write(d / "client.crt", cert=client),
        "key": _write(d / "client.key", key=client_key),
    }


def self_signed(d: Path) -> dict[str, Path]:
    """A self-signed server certificate for 127.0.0.1/localhost: keys ``cert``, ``key``."""
    d.mkdir(parents=True, exist_ok=True)
    key = _key()
    cert = _cert("127.0.0.1", "127.0.0.1", key, key, san=LOOPBACK_SAN)
    return {"cert": _write(d / "self-signed.crt", cert=cert), "key": _write(d / "self-signed.key", key=key)}
