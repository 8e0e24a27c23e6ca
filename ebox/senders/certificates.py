"""Checking the X.509 certificate an institution's back office will sign its SOAP requests with.

Only what can sign a request and nothing more is accepted: one end-entity certificate with a
strong key, valid now, allowed to make signatures. A private key pasted with it is refused, so
that it is never stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ebox.senders.texts import _

MAX_PEM_LENGTH = 20_000
MIN_RSA_BITS = 2048
ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_CERTIFICATE_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)


class CertificateRejected(ValueError):
    """The certificate cannot be registered; the message tells the applicant why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CertificateInfo:
    fingerprint_sha256: str  # hex SHA-256 of the DER encoding, lower case
    subject: str
    not_before: datetime
    not_after: datetime
    pem: str  # the certificate alone, re-encoded


def fingerprint_of(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def parse_certificate(pem: str, *, now: datetime) -> CertificateInfo:
    """Check pem and describe the certificate, or raise CertificateRejected."""
    certificate = _load_single(pem)
    _check_key(certificate.public_key())
    _check_validity(certificate, now)
    _check_signing_use(certificate)
    return CertificateInfo(
        fingerprint_sha256=fingerprint_of(certificate),
        subject=certificate.subject.rfc4514_string()[:1000],
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def pem_from_upload(content: bytes) -> str:
    """The text of an uploaded certificate file: PEM as it is, DER converted to PEM."""
    if content.lstrip()[:5] == b"-----":
        return content.decode("ascii", errors="replace")
    try:
        certificate = x509.load_der_x509_certificate(content)
    except ValueError as exc:
        raise CertificateRejected(
            _("This file is not a certificate (PEM or DER) and cannot be read.")
        ) from exc
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def contains_private_key(text: str) -> bool:
    return "PRIVATE KEY-----" in (text or "").upper()


def _load_single(pem: str) -> x509.Certificate:
    text = (pem or "").strip()
    if not text:
        raise CertificateRejected(_("Give the certificate in PEM form."))
    if contains_private_key(text):
        raise CertificateRejected(
            _(
                "This text contains a private key. Never send a private key to anyone: "
                "keep it in your back office, and consider it compromised. Send only the "
                "certificate (the block starting with -----BEGIN CERTIFICATE-----)."
            )
        )
    if len(text) > MAX_PEM_LENGTH:
        raise CertificateRejected(_("The certificate is too long (at most 20 kB)."))
    blocks = _BLOCK.findall(text)
    if not blocks:
        raise CertificateRejected(
            _("This is not a PEM certificate: it must start with -----BEGIN CERTIFICATE-----.")
        )
    if blocks != ["CERTIFICATE"]:
        raise CertificateRejected(
            _("Give exactly one certificate: the one your back office signs with.")
        )
    match = _CERTIFICATE_BLOCK.search(text)
    if match is None:
        raise CertificateRejected(_("This certificate is damaged and cannot be read."))
    try:
        certificate = x509.load_pem_x509_certificate(match.group(0).encode("ascii"))
        certificate.extensions  # noqa: B018 (parsed lazily: a malformed one must fail here)
        return certificate
    except ValueError as exc:
        raise CertificateRejected(_("This certificate is damaged and cannot be read.")) from exc


def _check_key(key: object) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateRejected(
                _(
                    "The RSA key has %(bits)d bits; at least 2048 are required.",
                    bits=key.key_size,
                )
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            raise CertificateRejected(
                _(
                    "The elliptic curve %(curve)s is not accepted; use P-256, P-384 or P-521.",
                    curve=key.curve.name,
                )
            )
        return
    raise CertificateRejected(
        _("Only RSA keys (2048 bits or more) and EC keys (P-256, P-384, P-521) are accepted.")
    )


def _check_validity(certificate: x509.Certificate, now: datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise CertificateRejected(
            _(
                "This certificate is not valid yet (valid from %(date)s).",
                date=certificate.not_valid_before_utc.date().isoformat(),
            )
        )
    if now > certificate.not_valid_after_utc:
        raise CertificateRejected(
            _(
                "This certificate expired on %(date)s.",
                date=certificate.not_valid_after_utc.date().isoformat(),
            )
        )


def _check_signing_use(certificate: x509.Certificate) -> None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        raise CertificateRejected(
            _(
                "This is a certificate authority's certificate. Send the certificate your "
                "back office signs with, not the one of its issuer."
            )
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise CertificateRejected(
            _(
                "This certificate may not be used for signatures: its key usage allows "
                "neither digitalSignature nor nonRepudiation."
            )
        )
