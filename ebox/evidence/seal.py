"""The platform's sealing key and certificate, which sign every evidence and proof of delivery.

Production gives them as PEM files (EBOX_SEAL_KEY, EBOX_SEAL_CERT, and EBOX_SEAL_CA_CERT, the
root a verifier trusts). The embedded default makes a demo root CA and a seal certificate under
instance/seal/ on first use: good for trying the flow end to end, worthless as proof, and
refused in production.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ebox.errors import ConfigError

DEMO_FOLDER = "seal"
DEMO_FILES = ("demo-root-ca.pem", "seal-key.pem", "seal-cert.pem")


@dataclass(frozen=True)
class Seal:
    key_pem: bytes
    cert_pem: bytes
    root_pem: bytes  # the trust anchor verifiers are given

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_pem)


def load_seal(*, key_path: str, cert_path: str, root_path: str, instance_path: Path) -> Seal:
    """The configured seal, or the demo one under instance/seal/ when none is configured."""
    if key_path or cert_path:
        if not (key_path and cert_path and root_path):
            raise ConfigError(
                "EBOX_SEAL_KEY, EBOX_SEAL_CERT and EBOX_SEAL_CA_CERT go together: set all three"
            )
        return Seal(
            key_pem=_read(key_path, "EBOX_SEAL_KEY"),
            cert_pem=_read(cert_path, "EBOX_SEAL_CERT"),
            root_pem=_read(root_path, "EBOX_SEAL_CA_CERT"),
        )
    return demo_seal(instance_path / DEMO_FOLDER)


def demo_seal(folder: Path) -> Seal:
    """Make (once, under a lock: the web and the worker may ask at the same moment) or read the
    demo root CA and seal certificate."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    root_file, key_file, cert_file = (folder / name for name in DEMO_FILES)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cert_file.exists():
            root_pem, key_pem, cert_pem = _make_demo_pki()
            key_file.write_bytes(key_pem)
            key_file.chmod(0o600)
            root_file.write_bytes(root_pem)
            cert_file.write_bytes(cert_pem)  # written last: its presence means complete
    return Seal(
        key_pem=key_file.read_bytes(),
        cert_pem=cert_file.read_bytes(),
        root_pem=root_file.read_bytes(),
    )


def _make_demo_pki() -> tuple[bytes, bytes, bytes]:
    now = datetime.now(UTC) - timedelta(minutes=5)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    root_name = _name("eBox demo root CA (not for production)")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    seal_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    seal = (
        x509.CertificateBuilder()
        .subject_name(_name("eBox demo seal (not for production)"))
        .issuer_name(root_name)
        .public_key(seal_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=10 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(seal_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        root.public_bytes(pem),
        seal_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        seal.public_bytes(pem),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eBox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path!r} ({exc.strerror})") from exc
