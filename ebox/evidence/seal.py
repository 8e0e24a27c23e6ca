"""The platform's sealing key and certificate, which sign every evidence and proof of delivery.

Production gives them as PEM files (EBOX_SEAL_KEY, EBOX_SEAL_CERT with its intermediate CAs if
any, and EBOX_SEAL_CA_CERT, the root a verifier trusts), and after a renewal the earlier
certificates (EBOX_SEAL_PREVIOUS_CERTS, and EBOX_SEAL_PREVIOUS_CA_CERTS when the root changed):
evidence sealed years ago must still verify. The embedded default makes a demo root CA and a
seal certificate under instance/seal/ on first use: good for trying the flow end to end,
worthless as proof, and refused in production.
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

from ebox.key_files import read_seal_files

DEMO_FOLDER = "seal"
DEMO_FILES = ("demo-root-ca.pem", "seal-key.pem", "seal-cert.pem")


@dataclass(frozen=True)
class Seal:
    """The key and certificate that seal new evidence and proofs, and what verifies the
    evidence and proofs sealed before a renewal of the certificate."""

    key_pem: bytes
    cert_pem: bytes  # the seal certificate alone
    root_pem: bytes  # the trust anchor verifiers are given
    # CA certificates between the seal certificate and the root, embedded in every signature.
    intermediate_pems: tuple[bytes, ...] = ()
    # Earlier seal certificates (EBOX_SEAL_PREVIOUS_CERTS), their intermediate CAs, and the
    # roots of those whose root was another (EBOX_SEAL_PREVIOUS_CA_CERTS).
    earlier_cert_pems: tuple[bytes, ...] = ()
    earlier_intermediate_pems: tuple[bytes, ...] = ()
    earlier_root_pems: tuple[bytes, ...] = ()

    @property
    def all_cert_pems(self) -> tuple[bytes, ...]:
        """Every seal certificate evidence of this platform may carry: current one first."""
        return (self.cert_pem, *self.earlier_cert_pems)

    @property
    def all_intermediate_pems(self) -> tuple[bytes, ...]:
        return (*self.intermediate_pems, *self.earlier_intermediate_pems)

    @property
    def all_root_pems(self) -> tuple[bytes, ...]:
        """Every root the platform's evidence chains to: the current one first."""
        return (self.root_pem, *self.earlier_root_pems)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_pem)


def load_seal(
    *,
    key_path: str,
    cert_path: str,
    root_path: str,
    instance_path: Path,
    earlier_certs_path: str = "",
    earlier_roots_path: str = "",
) -> Seal:
    """The configured seal (checked: see ebox.key_files.read_seal_files), or the demo one under
    instance/seal/ when none is configured."""
    if key_path or cert_path or root_path or earlier_certs_path or earlier_roots_path:
        files = read_seal_files(
            key_path=key_path,
            cert_path=cert_path,
            root_path=root_path,
            earlier_certs_path=earlier_certs_path,
            earlier_roots_path=earlier_roots_path,
        )
        return Seal(
            key_pem=files.key_pem,
            cert_pem=files.cert_pem,
            root_pem=files.root_pem,
            intermediate_pems=files.intermediate_pems,
            earlier_cert_pems=files.earlier_cert_pems,
            earlier_intermediate_pems=files.earlier_intermediate_pems,
            earlier_root_pems=files.earlier_root_pems,
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
