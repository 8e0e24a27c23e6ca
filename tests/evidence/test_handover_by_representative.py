"""A registered letter opened by a representative under a mandate, from confirm_receipt to what
a sender checks: the sealed chain (xmlsec1, the schema), `ebox evidence verify` and the PDF
proof (pdfsig, pyHanko, pdftotext); and never the representative's national number in a log."""

from __future__ import annotations

import itertools
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from lxml import etree

from ebox import national_number
from ebox.evidence.jobs import make_proof
from ebox.evidence.models import Evidence
from ebox.evidence.proofs import render_proof
from ebox.evidence.services import chain_of, platform_seal
from ebox.evidence.xml import (
    NAMESPACES,
    SCHEMA_PATH,
    RecipientAuthentication,
    Representative,
    digest,
    read_facts,
)
from ebox.extensions import db
from ebox.log_config import MaskingFormatter, MaskingJsonFormatter
from ebox.mailbox.models import Document
from ebox.mailbox.services import confirm_receipt
from tests.evidence.test_proofs import pdf_text, validated
from tests.evidence.verifiers import pdfsig, xmlsec1_verify
from tests.evidence.verify_helpers import platform_trust, proof_files, verify
from tests.factories import create_citizen, create_document

HOLDER_NUMBER = national_number.make("790215123")
HOLDER_NAME = "Marie Wouters-Quenneville"
MANDATE_ID = str(uuid.UUID("3f0b6f5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"))
MANDATE_END = datetime(2027, 6, 30, 22, 0, tzinfo=UTC)
HOLDER_LOGIN = RecipientAuthentication(
    identity_provider="https://idp.federation.example",
    authn_context="urn:be:fedict:iam:fas:citizen:eid",
    authenticated_at=datetime(2026, 11, 29, 9, 25, tzinfo=UTC),
    assertion_id="_holder-assertion-99",
)


def holder(**changes: object) -> Representative:
    stated: dict[str, object] = {
        "national_number": HOLDER_NUMBER,
        "name": HOLDER_NAME,
        "mandate_id": MANDATE_ID,
        "mandate_scope": "registered-mail",
        "mandate_valid_until": MANDATE_END,
    }
    return Representative(**{**stated, **changes})  # type: ignore[arg-type]


def opened_by_representative() -> Document:
    document = create_document(create_citizen(), is_registered=True, title="Formal notice")
    assert confirm_receipt(document=document, authentication=HOLDER_LOGIN, representative=holder())
    db.session.commit()
    return document


def handover(document: Document) -> Evidence:
    last = chain_of(document.id)[-1]
    assert last.event == "ContentHandover"
    return last


def representative_line(document: Document) -> str:
    return (
        f"opened by the representative {HOLDER_NAME} ({HOLDER_NUMBER}) on behalf of the "
        f"recipient {document.recipient_national_number}, under mandate {MANDATE_ID}, "
        "scope registered-mail, valid until 2027-06-30T22:00:00Z, which eBox found valid and "
        "in scope at that moment"
    )


def test_the_sealed_chain_names_the_representative_and_verifies(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    document = opened_by_representative()
    chain = chain_of(document.id)

    assert [item.event for item in chain] == [
        "SubmissionAcceptance",
        "ContentConsignment",
        "ContentHandover",
    ]
    for before, after in itertools.pairwise(chain):
        assert read_facts(after.xml).previous_evidence_sha256 == digest(before.xml)
    root = etree.fromstring(chain[-1].xml)
    assert etree.XMLSchema(etree.parse(str(SCHEMA_PATH))).validate(root)
    assert root.findtext("ev:Recipient/ev:NationalNumber", namespaces=NAMESPACES) == (
        document.recipient_national_number
    )
    assert root.find("ev:Recipient/ev:Authentication", NAMESPACES) is None
    assert root.findtext("ev:Representative/ev:NationalNumber", namespaces=NAMESPACES) == (
        HOLDER_NUMBER
    )
    assert root.findtext(
        "ev:Representative/ev:Authentication/ev:AssertionId", namespaces=NAMESPACES
    ) == ("_holder-assertion-99")
    for earlier in chain[:-1]:
        assert b"Representative" not in earlier.xml

    (tmp_path / "root.pem").write_bytes(platform_seal().root_pem)
    xmls = []
    for item in chain:
        xmls.append(tmp_path / f"{item.position}-{item.event}.xml")
        xmls[-1].write_bytes(item.xml)
        result = xmlsec1_verify(xmls[-1], tmp_path / "root.pem")
        assert result.returncode == 0, result.stderr

    code, output = verify(runner, *xmls, *platform_trust(tmp_path))
    assert code == 0, output
    assert "the 3 evidence form one unbroken chain" in output
    assert representative_line(document) in output
    assert "the representative had logged in through https://idp.federation.example" in output
    assert "the recipient had logged in" not in output


@pytest.mark.slow
def test_the_proof_names_the_representative_and_verifies(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    document = opened_by_representative()
    pdf, _ = proof_files(document, tmp_path)
    seal = platform_seal()

    code, output = verify(runner, pdf, *platform_trust(tmp_path))
    assert code == 0, output
    assert "3 evidence XML attached" in output
    assert representative_line(document) in output

    status = validated(pdf.read_bytes(), seal.root_pem)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    report = pdfsig(pdf, tmp_path / "root.pem", tmp_path / "nss")
    assert "Signature is Valid." in report and "Certificate is Trusted." in report
    assert "Total document signed" in report

    text = pdf_text(pdf.read_bytes(), tmp_path)
    recipient = document.recipient_national_number
    for fact in (
        "Opened on the recipient's behalf",
        f"Opened by {HOLDER_NAME} (national register number {HOLDER_NUMBER}) on behalf of the "
        f"recipient {recipient} under a mandate that the platform found valid",
        f"Mandate {MANDATE_ID}, scope: registered-mail, valid until June 30, 2027, 22:00:00 UTC",
        "Representative logged in through https://idp.federation.example",
        "_holder-assertion-99",
    ):
        assert fact in text, fact
    assert "Opened by the recipient" not in text
    assert "Recipient logged in" not in text
    assert "1/1" in text  # still one page


@pytest.mark.slow
@pytest.mark.parametrize(
    ("language", "wanted"),
    [
        ("nl", ["Geopend namens de bestemmeling", f"Geopend door {HOLDER_NAME} "
                "(rijksregisternummer", "Volmacht", "geldig tot 30 juni 2027"]),
        ("fr", ["Ouvert au nom du destinataire", f"Ouvert par {HOLDER_NAME} (numéro de registre "
                "national", "en vertu d’un mandat", "valable jusqu’au 30 juin 2027"]),
        ("de", ["Im Namen des Empfängers geöffnet", f"Geöffnet von {HOLDER_NAME} "
                "(Nationalregisternummer", "Vollmacht", "gültig bis 30. Juni 2027"]),
    ],
)  # fmt: skip
def test_the_proof_says_it_in_the_message_language(
    app: Flask, tmp_path: Path, language: str, wanted: list[str]
) -> None:
    document = opened_by_representative()
    chain = [item.xml for item in chain_of(document.id)]
    pdf = render_proof(chain, language=language, version=1, seal=platform_seal())
    text = pdf_text(pdf, tmp_path)
    for phrase in wanted:
        assert phrase in text, phrase
    assert HOLDER_NUMBER in text and "Opened" not in text


def test_an_opening_by_the_recipient_names_no_representative(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    document = create_document(create_citizen(), is_registered=True)
    assert confirm_receipt(document=document, authentication=HOLDER_LOGIN)
    db.session.commit()
    evidence = handover(document)

    assert b"Representative" not in evidence.xml
    root = etree.fromstring(evidence.xml)
    assert root.findtext(
        "ev:Recipient/ev:Authentication/ev:AssertionId", namespaces=NAMESPACES
    ) == ("_holder-assertion-99")
    (tmp_path / "handover.xml").write_bytes(evidence.xml)
    code, output = verify(runner, tmp_path / "handover.xml", *platform_trust(tmp_path))
    assert code == 0, output
    assert "the recipient had logged in through" in output
    assert "representative" not in output


def test_the_first_opening_is_the_one_sealed(app: Flask) -> None:
    document = create_document(create_citizen(), is_registered=True)
    assert confirm_receipt(document=document)  # the recipient first
    assert not confirm_receipt(document=document, representative=holder())
    db.session.commit()
    assert len(chain_of(document.id)) == 3
    assert read_facts(handover(document).xml).representative is None


def test_a_recipient_is_not_their_own_representative(app: Flask) -> None:
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    with pytest.raises(ValueError, match="not their own representative"):
        confirm_receipt(
            document=document, representative=holder(national_number=citizen.national_number)
        )
    db.session.rollback()  # as a request's failure does: nothing of it stays
    assert [item.event for item in chain_of(document.id)] == [
        "SubmissionAcceptance",
        "ContentConsignment",
    ]


@pytest.mark.parametrize("change", ["name", "number", "mandate", "removed"])
def test_a_changed_representative_proves_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, change: str
) -> None:
    document = opened_by_representative()
    root = etree.fromstring(handover(document).xml)
    person = root.find("ev:Representative", NAMESPACES)
    assert person is not None
    if change == "removed":  # it would read as an opening by the recipient
        root.remove(person)
    else:
        path = {"name": "Name", "number": "NationalNumber", "mandate": "Mandate/MandateId"}
        node = person.find("/".join(f"ev:{step}" for step in path[change].split("/")), NAMESPACES)
        assert node is not None and node.text
        node.text = {"name": "Marie Wouters", "number": national_number.make("790215124")}.get(
            change, str(uuid.uuid4())
        )
    (tmp_path / "changed.xml").write_bytes(etree.tostring(root, xml_declaration=True))
    (tmp_path / "root.pem").write_bytes(platform_seal().root_pem)

    assert xmlsec1_verify(tmp_path / "changed.xml", tmp_path / "root.pem").returncode != 0
    code, output = verify(runner, tmp_path / "changed.xml", *platform_trust(tmp_path))
    assert code == 1
    assert "the seal signature does not verify" in output
    assert "does NOT prove anything" in output
    assert "opened by the representative" not in output


# --- the logs --------------------------------------------------------------------------------


def test_the_representative_is_never_logged(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, every_log_record: list[logging.LogRecord]
) -> None:
    document = opened_by_representative()
    assert make_proof(str(document.id)) is not None
    (tmp_path / "handover.xml").write_bytes(handover(document).xml)
    code, _ = verify(runner, tmp_path / "handover.xml", *platform_trust(tmp_path))
    assert code == 0

    messages = [record.getMessage() for record in every_log_record]
    assert any("(ContentHandover, by a representative)" in message for message in messages)
    n = HOLDER_NUMBER
    printed = f"{n[0:2]}.{n[2:4]}.{n[4:6]}-{n[6:9]}.{n[9:11]}"
    forbidden = [HOLDER_NUMBER, printed, "Wouters", "Quenneville", "_holder-assertion-99"]
    leaks = [
        (record.name, text)
        for record in every_log_record
        for text in (
            logging.Formatter("%(message)s").format(record),
            MaskingFormatter("%(message)s").format(record),
            MaskingJsonFormatter().format(record),
        )
        if any(word in text for word in forbidden)
    ]
    assert leaks == []
