"""Evidence of a message with attachments (schema 1.2): one AttachmentDigest per attachment
after DocumentDigest, checked by xmlsec1 and by `ebox evidence verify`, listed in the proof in
every language; a message without attachments is sealed exactly as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from lxml import etree

from ebox.evidence.proofs import render_proof
from ebox.evidence.seal import Seal, demo_seal
from ebox.evidence.services import chain_of, platform_seal
from ebox.evidence.xml import NAMESPACES, SCHEMA_PATH, AttachmentDigest, build_and_seal, read_facts
from ebox.extensions import db
from ebox.mailbox.publication import SubmittedAttachment
from ebox.mailbox.services import confirm_receipt
from tests.evidence.samples import sample_facts
from tests.evidence.test_evidence_representative import SCHEMA_1_0, children, validates
from tests.evidence.test_proofs import pdf_text
from tests.evidence.verifiers import xmlsec1_verify
from tests.evidence.verify_helpers import platform_trust, proof_files, verify
from tests.factories import create_citizen, create_document, make_png

# The schema before attachments: what a verifier may still hold.
SCHEMA_1_1 = Path(__file__).resolve().parent / "schema-1.1" / "Evidence-v1.xsd"
ANNEXES = (
    AttachmentDigest(1, "calculation.pdf", "1a" * 32),
    AttachmentDigest(2, "floor plan.png", "2b" * 32),
)
NOTES = b"Read me first.\n"


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> Seal:
    return demo_seal(tmp_path_factory.mktemp("seal"))


def test_each_attachment_digest_follows_the_document_digest(seal: Seal, tmp_path: Path) -> None:
    xml = build_and_seal(sample_facts(attachments=ANNEXES), seal)
    message = etree.fromstring(xml).find("ev:Message", NAMESPACES)
    names = children(message)
    at = names.index("DocumentDigest")
    assert names[at : at + 3] == ["DocumentDigest", "AttachmentDigest", "AttachmentDigest"]
    assert read_facts(xml).attachments == ANNEXES
    assert validates(xml, SCHEMA_PATH)
    # Earlier readers refuse it rather than take it for the main document's evidence alone.
    assert not validates(xml, SCHEMA_1_1) and not validates(xml, SCHEMA_1_0)
    (tmp_path / "evidence.xml").write_bytes(xml)
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    assert xmlsec1_verify(tmp_path / "evidence.xml", tmp_path / "root.pem").returncode == 0

    changed = xml.replace(b"2b" * 32, b"2c" * 32)
    (tmp_path / "changed.xml").write_bytes(changed)
    assert xmlsec1_verify(tmp_path / "changed.xml", tmp_path / "root.pem").returncode != 0


def test_a_message_without_attachments_is_sealed_as_before(seal: Seal) -> None:
    xml = build_and_seal(sample_facts(), seal)
    assert b"AttachmentDigest" not in xml
    assert validates(xml, SCHEMA_1_1) and validates(xml, SCHEMA_1_0)
    assert read_facts(xml).attachments == ()


def registered_with_attachments():
    attachments = [
        SubmittedAttachment("floor plan.png", "image/png", make_png()),
        SubmittedAttachment("notes.txt", "text/plain", NOTES),
    ]
    document = create_document(create_citizen(), is_registered=True, attachments=attachments)
    confirm_receipt(document=document)
    db.session.commit()
    return document


def test_every_evidence_of_a_registered_message_carries_each_digest_and_verifies(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    document = registered_with_attachments()
    digests = [hashlib.sha256(content).hexdigest() for content in (make_png(), NOTES)]
    pdf, xmls = proof_files(document, tmp_path)
    for item in chain_of(document.id):
        stated = read_facts(item.xml).attachments
        assert [(a.position, a.file_name, a.sha256) for a in stated] == [
            (1, "floor plan.png", digests[0]),
            (2, "notes.txt", digests[1]),
        ]

    code, output = verify(runner, pdf, *platform_trust(tmp_path))
    assert code == 0, output
    assert f"with attachment 1 SHA-256 {digests[0]}" in output
    assert f"with attachment 2 SHA-256 {digests[1]}" in output
    code, output = verify(runner, *xmls, *platform_trust(tmp_path))
    assert code == 0, output
    for path in xmls:
        assert xmlsec1_verify(path, tmp_path / "seal-root.pem").returncode == 0

    text = pdf_text(pdf.read_bytes(), tmp_path)
    assert "Attachment 1" in text and "Attachment 2" in text
    assert digests[0] in text and digests[1] in text


@pytest.mark.parametrize(
    ("language", "label"), [("nl", "Bijlage 2"), ("fr", "Pièce jointe 2"), ("de", "Anhang 2")]
)
def test_the_proof_lists_the_attachments_in_the_senders_language(
    app: Flask, tmp_path: Path, language: str, label: str
) -> None:
    document = registered_with_attachments()
    chain = [item.xml for item in chain_of(document.id)]
    with app.test_request_context():
        pdf = render_proof(chain, language=language, version=1, seal=platform_seal())
    text = pdf_text(pdf, tmp_path)
    assert label in text and hashlib.sha256(NOTES).hexdigest() in text
