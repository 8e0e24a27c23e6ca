"""Certificates and keys made on the spot, with whatever flaw a test needs."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ebox.db_types import utcnow

PrivateKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey | ed25519.Ed25519PrivateKey
)


def make_key(kind: str = "rsa", *, bits: int = 2048, curve: str = "p256") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ec":
        curves: dict[str, ec.EllipticCurve] = {
            "p256": ec.SECP256R1(),
            "p384": ec.SECP384R1(),
            "p521": ec.SECP521R1(),
            "k256": ec.SECP256K1(),
        }
        return ec.generate_private_key(curves[curve])
    if kind == "dsa":
        return dsa.generate_private_key(key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def make_certificate_pem(
    key: PrivateKey | None = None,
    *,
    name: str = "Back office of a test institution",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    is_ca: bool | None = False,
    key_usage: str | None = "signature",
) -> str:
    """A self-signed certificate; key_usage "signature", "encipherment" or None (no extension)."""
    key = key or make_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Institution"),
        ]
    )
    now = utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
    )
    if is_ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=None), critical=True
        )
    if key_usage is not None:
        signing = key_usage == "signature"
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=signing,
                content_commitment=False,
                key_encipherment=not signing,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=bool(is_ca),
                crl_sign=bool(is_ca),
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    certificate = builder.sign(key, algorithm)
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
