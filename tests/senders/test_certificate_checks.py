"""parse_certificate(): what a back office may sign with, and every way a paste goes wrong."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ebox.db_types import utcnow
from ebox.senders.certificates import CertificateRejected, parse_certificate, pem_from_upload
from tests.senders.certificate_helpers import make_certificate_pem, make_key, private_key_pem


def rejection(pem: str) -> str:
    with pytest.raises(CertificateRejected) as caught:
        parse_certificate(pem, now=utcnow())
    return caught.value.message


def test_an_rsa_2048_certificate_is_described_by_its_fingerprint_subject_and_dates() -> None:
    pem = make_certificate_pem(make_key("rsa", bits=2048), name="Tax back office")
    info = parse_certificate("\n  " + pem + "\n", now=utcnow())
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert info.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert "CN=Tax back office" in info.subject
    assert info.not_before < utcnow() < info.not_after
    assert info.pem == pem


@pytest.mark.parametrize("curve", ["p256", "p384", "p521"])
def test_ec_certificates_on_nist_curves_are_accepted(curve: str) -> None:
    info = parse_certificate(make_certificate_pem(make_key("ec", curve=curve)), now=utcnow())
    assert len(info.fingerprint_sha256) == 64


def test_a_certificate_without_key_usage_or_basic_constraints_is_accepted() -> None:
    pem = make_certificate_pem(is_ca=None, key_usage=None)
    assert parse_certificate(pem, now=utcnow()).subject


def test_an_rsa_1024_key_is_refused() -> None:
    assert "1024 bits" in rejection(make_certificate_pem(make_key("rsa", bits=1024)))


def test_an_ec_key_on_another_curve_is_refused() -> None:
    assert "secp256k1" in rejection(make_certificate_pem(make_key("ec", curve="k256")))


@pytest.mark.parametrize("kind", ["dsa", "ed25519"])
def test_dsa_and_other_key_types_are_refused(kind: str) -> None:
    assert "Only RSA keys" in rejection(make_certificate_pem(make_key(kind)))


def test_an_expired_certificate_is_refused() -> None:
    now = utcnow()
    pem = make_certificate_pem(
        not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    assert "expired" in rejection(pem)


def test_a_certificate_not_valid_yet_is_refused() -> None:
    now = utcnow()
    pem = make_certificate_pem(
        not_before=now + timedelta(days=2), not_after=now + timedelta(days=9)
    )
    assert "not valid yet" in rejection(pem)


def test_a_ca_certificate_is_refused() -> None:
    assert "certificate authority" in rejection(make_certificate_pem(is_ca=True))


def test_a_certificate_for_encipherment_only_is_refused() -> None:
    assert "may not be used for signatures" in rejection(
        make_certificate_pem(key_usage="encipherment")
    )


def test_a_pasted_private_key_is_refused_and_the_sender_warned() -> None:
    key = make_key()
    message = rejection(make_certificate_pem(key) + private_key_pem(key))
    assert "private key" in message and "Never send" in message


def test_a_private_key_alone_is_refused_the_same_way() -> None:
    assert "Never send a private key" in rejection(private_key_pem(make_key("ec")))


def test_two_certificates_are_refused() -> None:
    assert "exactly one" in rejection(make_certificate_pem() + make_certificate_pem())


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ],
)
def test_garbage_is_refused_with_a_message(garbage: str) -> None:
    assert rejection(garbage)


def test_a_paste_above_20_kb_is_refused() -> None:
    assert "20 kB" in rejection(make_certificate_pem() + "\n" + " " * 21_000 + "x")


def test_an_uploaded_der_file_is_read_as_pem() -> None:
    pem = make_certificate_pem()
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert pem_from_upload(der) == pem
    with pytest.raises(CertificateRejected):
        pem_from_upload(b"\x00\x01binary")
