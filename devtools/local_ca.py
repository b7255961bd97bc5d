"""This machine's own certificate authority, for the TLS of local node agents.

In production the edge reaches a node's agent over TLS with a Cloudflare Origin CA
certificate (docs/edge-to-node.md). Locally there is no Cloudflare in between, so `sam dev`
keeps a small CA in its data directory and the node launcher issues each agent a
certificate for its own name, `vm-{node_id}.localhost`; the local edge's outbound fetch
trusts exactly this CA for `*.localhost` (twin/upstream.py), so an agent with any other
certificate is refused, as Cloudflare's "Full (strict)" mode refuses one.

    ca = LocalCa.ensure(data_dir / "local-ca")     made once, kept after
    files = ca.issue("vm-n1.localhost", directory) cert.pem + key.pem for that name

Every file is 0600 in a 0700 directory, as all local state is (twin/private_files.py).

Keys are ECDSA P-256; nothing here runs at import time.
"""

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from twin.private_files import PRIVATE_FILE_MODE, private_dir

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
CA_VALIDITY_DAYS = 10 * 365
NODE_CERT_VALIDITY_DAYS = 90  # issued again at every agent start
CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class TlsFiles:
    """A certificate and its private key, as an agent is given them (SAM_TLS_CERT/KEY)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LocalCa:
    cert_path: Path
    key_path: Path

    @classmethod
    def ensure(cls, directory: Path, name: str = "SAM local nodes CA") -> "LocalCa":
        """The CA kept in `directory`, made there first if it is not yet."""
        ca = cls(directory / CA_CERT_FILE, directory / CA_KEY_FILE)
        if ca.cert_path.exists() and ca.key_path.exists():
            return ca
        private_dir(directory)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=CA_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(ca.key_path, _pem_key(key))
        _write_private(ca.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def issue(self, hostname: str, directory: Path) -> TlsFiles:
        """A server certificate for `hostname` alone, with a new key, in `directory`."""
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=NODE_CERT_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), False)
            .sign(ca_key, hashes.SHA256())
        )
        private_dir(directory)
        files = TlsFiles(directory / CERT_FILE, directory / KEY_FILE)
        _write_private(files.key, _pem_key(key))
        _write_private(files.cert, cert.public_bytes(serialization.Encoding.PEM))
        return files


def _usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, pem: bytes) -> None:
    """0600 from its first byte (a key, or a certificate: the data directory is its owner's
    alone), replacing any file there before."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    os.replace(temporary, path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
