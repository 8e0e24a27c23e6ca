"""Verifiers download the seal's root and certificate from eBox itself."""

from __future__ import annotations

from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient

from ebox.evidence.services import platform_seal


def test_the_seal_root_and_certificate_are_published(app: Flask, client: FlaskClient) -> None:
    root = client.get("/evidence/seal-root.pem")
    seal = client.get("/evidence/seal.pem")

    assert root.status_code == seal.status_code == 200
    assert root.content_type == "application/x-pem-file"
    assert root.data == platform_seal().root_pem
    assert seal.data == platform_seal().cert_pem
    issued = x509.load_pem_x509_certificate(seal.data)
    issuer = x509.load_pem_x509_certificate(root.data)
    issued.verify_directly_issued_by(issuer)  # raises if the seal does not chain to the root


def test_the_evidence_schema_is_published(client: FlaskClient) -> None:
    answer = client.get("/evidence/Evidence-v1.xsd")

    assert answer.status_code == 200
    assert b'targetNamespace="urn:ebox:ns:Evidence:v1"' in answer.data
