"""Key and certificate files named by settings (the SAML service provider's, the seal's, the
key that signs pushes): read and checked when eBox starts, so that a file that cannot serve is
refused with its setting's name instead of failing at the first login, the first registered
publication or the first push.

A file holds PEM blocks; a certificate file may hold several certificates (a seal certificate
followed by its intermediate CAs, or a bundle of earlier ones). Nothing here needs Flask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ebox.errors import ConfigError

# A chain from a seal certificate to its root: the seal, intermediates, the root.
MAX_CHAIN_LENGTH = 6


def read_file(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{setting}: cannot read {path!r} ({error.strerror})") from error


def read_key(path: str, setting: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(read_file(path, setting), password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"{setting}: {path!r} is not an unencrypted PEM private key ({error})"
        ) from None


def read_certificates(path: str, setting: str) -> list[x509.Certificate]:
    """Every certificate of a PEM file, in order; at least one."""
    data = read_file(path, setting)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigError(f"{setting}: {path!r} holds no PEM certificate")
    return certificates


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def describe(certificate: x509.Certificate) -> str:
    return f"'{certificate.subject.rfc4514_string()}' (serial {certificate.serial_number:x})"


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def check_current(certificate: x509.Certificate, setting: str, now: datetime | None = None) -> None:
    """A certificate about to sign: valid now."""
    now = now or datetime.now(UTC)
    if certificate.not_valid_after_utc <= now:
        raise ConfigError(
            f"{setting}: the certificate {describe(certificate)} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if certificate.not_valid_before_utc > now:
        raise ConfigError(
            f"{setting}: the certificate {describe(certificate)} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def check_pair(key: PrivateKeyTypes, certificate: x509.Certificate, settings: str) -> None:
    """The key is the certificate's: what the key signs, the certificate lets others check."""
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != certificate.public_key().public_bytes(
        der, public
    ):
        raise ConfigError(
            f"{settings}: the private key is not the key of the certificate {describe(certificate)}"
        )


def chain_to(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
) -> x509.Certificate | None:
    """The root among roots that leaf chains to, through intermediates (each link's signature
    checked), or None."""
    current = leaf
    for _ in range(MAX_CHAIN_LENGTH):
        for root in roots:
            if _issued_by(current, root):
                return root
        issuer = next(
            (
                candidate
                for candidate in intermediates
                if candidate != current and is_ca(candidate) and _issued_by(current, candidate)
            ),
            None,
        )
        if issuer is None:
            return None
        current = issuer
    return None


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):  # another key, or another algorithm
        return False
    return True


@dataclass(frozen=True)
class SealFiles:
    """The seal's files, read and checked: the current key and certificate (with the
    intermediate CAs up to the root), the root, and the earlier certificates and roots."""

    key_pem: bytes
    cert_pem: bytes
    intermediate_pems: tuple[bytes, ...]
    root_pem: bytes
    earlier_cert_pems: tuple[bytes, ...]
    earlier_intermediate_pems: tuple[bytes, ...]
    earlier_root_pems: tuple[bytes, ...]


def read_seal_files(
    *,
    key_path: str,
    cert_path: str,
    root_path: str,
    earlier_certs_path: str = "",
    earlier_roots_path: str = "",
) -> SealFiles:
    """The configured seal, checked: the key matches the certificate, the certificate is valid
    now and chains to the root (through the intermediates that follow it in its file); every
    earlier certificate chains to the root or to an earlier root. Earlier certificates may have
    expired: they seal nothing any more."""
    if not (key_path and cert_path and root_path):
        raise ConfigError(
            "EBOX_SEAL_KEY, EBOX_SEAL_CERT and EBOX_SEAL_CA_CERT go together: set all three"
        )
    key = read_key(key_path, "EBOX_SEAL_KEY")
    seal, *intermediates = read_certificates(cert_path, "EBOX_SEAL_CERT")
    check_pair(key, seal, "EBOX_SEAL_KEY and EBOX_SEAL_CERT")
    check_current(seal, "EBOX_SEAL_CERT")
    root = read_certificates(root_path, "EBOX_SEAL_CA_CERT")
    if len(root) != 1:
        raise ConfigError(f"EBOX_SEAL_CA_CERT: {root_path!r} must hold one certificate, the root")
    if chain_to(seal, intermediates, root) is None:
        raise ConfigError(
            f"EBOX_SEAL_CERT: the certificate {describe(seal)} does not chain to "
            f"EBOX_SEAL_CA_CERT {describe(root[0])} (put the intermediate CA certificates after "
            "the seal certificate, in the same file)"
        )
    earlier_roots = (
        read_certificates(earlier_roots_path, "EBOX_SEAL_PREVIOUS_CA_CERTS")
        if earlier_roots_path
        else []
    )
    earlier: list[x509.Certificate] = []
    if earlier_certs_path:
        bundle = read_certificates(earlier_certs_path, "EBOX_SEAL_PREVIOUS_CERTS")
        cas = [item for item in bundle if is_ca(item)] + intermediates
        earlier = [item for item in bundle if not is_ca(item)]
        for item in earlier:
            if item == seal:
                raise ConfigError(
                    f"EBOX_SEAL_PREVIOUS_CERTS holds the current seal certificate {describe(seal)}"
                )
            if chain_to(item, cas, [*root, *earlier_roots]) is None:
                raise ConfigError(
                    f"EBOX_SEAL_PREVIOUS_CERTS: the certificate {describe(item)} chains to neither "
                    "EBOX_SEAL_CA_CERT nor a root of EBOX_SEAL_PREVIOUS_CA_CERTS"
                )
        earlier_intermediates = [item for item in bundle if is_ca(item)]
    else:
        earlier_intermediates = []
    return SealFiles(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_pem=pem(seal),
        intermediate_pems=tuple(pem(item) for item in intermediates),
        root_pem=pem(root[0]),
        earlier_cert_pems=tuple(pem(item) for item in earlier),
        earlier_intermediate_pems=tuple(pem(item) for item in earlier_intermediates),
        earlier_root_pems=tuple(pem(item) for item in earlier_roots),
    )


def check_saml_sp_files(*, key_path: str, cert_path: str, next_cert_path: str) -> None:
    """The service provider's key pair (when configured) and its next certificate (when
    given): readable, the key the certificate's, both certificates valid now and different."""
    if bool(key_path) != bool(cert_path):
        raise ConfigError("EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT go together: set both")
    current: x509.Certificate | None = None
    if key_path:
        key = read_key(key_path, "EBOX_SAML_SP_KEY")
        current = read_certificates(cert_path, "EBOX_SAML_SP_CERT")[0]
        check_pair(key, current, "EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT")
        check_current(current, "EBOX_SAML_SP_CERT")
    if next_cert_path:
        certificates = read_certificates(next_cert_path, "EBOX_SAML_SP_NEXT_CERT")
        if len(certificates) != 1:
            raise ConfigError(
                f"EBOX_SAML_SP_NEXT_CERT: {next_cert_path!r} must hold one certificate"
            )
        check_current(certificates[0], "EBOX_SAML_SP_NEXT_CERT")
        if certificates[0] == current:
            raise ConfigError(
                "EBOX_SAML_SP_NEXT_CERT is the certificate of EBOX_SAML_SP_CERT: it must name "
                "the other one of the rollover"
            )


def check_vapid_key(path: str, *, refuse_shared: bool, setting: str) -> ec.EllipticCurvePrivateKey:
    """The key that signs pushes (VAPID, RFC 8292): a P-256 private key. With refuse_shared
    (production), a file that other users of the machine may read is refused: whoever holds
    the key can push to every subscribed device."""
    key = read_key(path, setting)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{setting}: {path!r} is not a P-256 (prime256v1) private key")
    if refuse_shared and Path(path).stat().st_mode & 0o007:
        raise ConfigError(f"{setting}: {path!r} may be read by any user: chmod o-rwx it")
    return key
