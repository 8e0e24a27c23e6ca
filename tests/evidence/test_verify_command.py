"""`flask --app app ebox evidence verify`: what a sender or a judge runs on the files they hold."""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from lxml import etree

from ebox.evidence.jobs import make_proof
from ebox.evidence.models import DeliveryProof
from ebox.evidence.proofs import render_proof
from ebox.evidence.seal import Seal, demo_seal
from ebox.evidence.services import chain_of, platform_seal
from ebox.evidence.xml import NAMESPACES, build_and_seal
from ebox.extensions import db
from ebox.mailbox.services import confirm_receipt
from ebox.retention.services import purge_expired
from tests.evidence.samples import sample_facts
from tests.evidence.tsa_server import TimestampAuthority
from tests.evidence.verify_helpers import (
    opened_registered_document,
    platform_trust,
    proof_files,
    verify,
)
from tests.factories import create_citizen, create_document
from tests.pki import Issued, issue, make_ca
from tests.retention.retention_helpers import expire


def seal_of(ca: Issued, common_name: str, valid_for: timedelta = timedelta(days=300)) -> Seal:
    leaf = issue(ca, common_name, valid_for=valid_for)
    return Seal(key_pem=leaf.key_pem, cert_pem=leaf.cert_pem, root_pem=ca.cert_pem)


def test_a_proof_of_delivery_verifies_and_says_what_it_proves(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    document = opened_registered_document()
    pdf, _ = proof_files(document, tmp_path)

    code, output = verify(runner, pdf, *platform_trust(tmp_path))

    print(output)
    assert code == 0, output
    assert "FAIL" not in output
    assert "the PDF signer's certificate chains to the trusted root" in output
    assert "the signature covers the whole file" in output
    assert "3 evidence XML attached" in output
    assert f"for message {document.id}" in output
    events = [line.split()[0] for line in output.splitlines() if " at 20" in line]
    assert events == ["SubmissionAcceptance", "ContentConsignment", "ContentHandover"]


def test_a_pdf_with_one_byte_changed_proves_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    pdf, _ = proof_files(opened_registered_document(), tmp_path)
    data = bytearray(pdf.read_bytes())
    middle = len(data) // 3
    data[middle] = (data[middle] + 1) % 256
    pdf.write_bytes(bytes(data))

    code, output = verify(runner, pdf, *platform_trust(tmp_path))

    assert code == 1
    assert "FAIL" in output and "does NOT prove" in output


def test_evidence_given_together_is_checked_as_one_chain(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)

    trust = platform_trust(tmp_path)
    code, output = verify(runner, *xmls, *trust)
    assert code == 0, output
    assert "the 3 evidence form one unbroken chain" in output

    code, output = verify(runner, xmls[0], xmls[2], *trust)  # the consignment left out
    assert code == 1
    assert "FAIL the 2 evidence form one unbroken chain" in output


def test_altered_evidence_and_wrapped_signatures_are_refused(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)
    original = etree.parse(str(xmls[2])).getroot()

    altered = copy.deepcopy(original)
    time = altered.find("ev:EventTime", NAMESPACES)
    assert time is not None
    time.text = "2020-01-01T00:00:00.000000Z"
    (tmp_path / "altered.xml").write_bytes(etree.tostring(altered))
    code, output = verify(runner, tmp_path / "altered.xml", *platform_trust(tmp_path))
    assert code == 1
    assert "FAIL altered.xml" not in output  # the report names the file it read
    assert "the seal signature does not verify" in output

    # Signature wrapping: the genuine signed document hidden inside a forged one.
    forged = copy.deepcopy(original)
    signature = forged.find("ds:Signature", NAMESPACES)
    assert signature is not None
    forged.remove(signature)
    wrapper = etree.SubElement(forged, f"{{{NAMESPACES['ev']}}}Extension")
    wrapper.append(copy.deepcopy(original))
    (tmp_path / "wrapped.xml").write_bytes(etree.tostring(forged))
    code, output = verify(runner, tmp_path / "wrapped.xml", *platform_trust(tmp_path))
    assert code == 1
    assert "FAIL evidence: follows the Evidence schema" in output

    # The same inside the signature (which the schema does not look into): the reference
    # names the hidden original instead of the whole document.
    forged = copy.deepcopy(altered)
    signature = forged.find("ds:Signature", NAMESPACES)
    reference = forged.find("ds:Signature/ds:SignedInfo/ds:Reference", NAMESPACES)
    assert signature is not None and reference is not None
    hidden = etree.SubElement(signature, f"{{{NAMESPACES['ds']}}}Object")
    hidden.append(copy.deepcopy(original))
    hidden.set("Id", "genuine")
    reference.set("URI", "#genuine")
    (tmp_path / "wrapped-in-signature.xml").write_bytes(etree.tostring(forged))
    code, output = verify(runner, tmp_path / "wrapped-in-signature.xml", *platform_trust(tmp_path))
    assert code == 1
    assert "FAIL evidence: exactly one signature, on the document itself" in output


def test_a_proof_sealed_under_another_root_is_not_trusted(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    pdf, xmls = proof_files(opened_registered_document(), tmp_path)
    foreign = demo_seal(tmp_path / "foreign")
    (tmp_path / "foreign-root.pem").write_bytes(foreign.root_pem)
    (tmp_path / "seal.pem").write_bytes(platform_seal().cert_pem)
    trust = ["--root", tmp_path / "foreign-root.pem", "--seal-cert", tmp_path / "seal.pem"]

    code, output = verify(runner, pdf, xmls[0], *trust)

    assert code == 1
    assert "FAIL the PDF signer's certificate does not chain to the trusted root" in output
    assert "the seal certificate does not chain to the trusted root" in output


def test_timestamps_are_verified_against_the_authority_given(
    app: Flask, runner: FlaskCliRunner, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    app.config["EBOX"].tsa_url = tsa.url
    try:
        pdf, xmls = proof_files(opened_registered_document(), tmp_path)
    finally:
        app.config["EBOX"].tsa_url = ""

    code, output = verify(
        runner, pdf, *xmls, "--tsa-root", tsa.ca_pem_path, *platform_trust(tmp_path)
    )
    assert code == 0, output
    assert output.count("timestamped at") >= 7  # the PDF and 3 × 2 evidence lines
    assert "by a trusted authority" in output

    other = demo_seal(tmp_path / "other")  # any root but the authority's
    (tmp_path / "other.pem").write_bytes(other.root_pem)
    code, output = verify(
        runner, xmls[0], "--tsa-root", tmp_path / "other.pem", *platform_trust(tmp_path)
    )
    assert code == 1
    assert "FAIL evidence: the signature was timestamped at" in output


def test_a_malformed_certificate_is_a_failed_check_not_a_crash(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)
    root = etree.parse(str(xmls[0])).getroot()
    certificate = root.find("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NAMESPACES)
    assert certificate is not None
    certificate.text = "abc"
    (tmp_path / "broken.xml").write_bytes(etree.tostring(root))

    code, output = verify(runner, tmp_path / "broken.xml", xmls[1], *platform_trust(tmp_path))

    assert code == 1
    assert "FAIL evidence: sealed with eBox's sealing certificate" in output
    assert f"{xmls[1]}:" in output  # the other file still gets its report


@pytest.mark.parametrize("content", [b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", b"not xml"])
def test_hostile_or_broken_files_are_refused_with_a_reason(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "bad.xml").write_bytes(content)

    code, output = verify(runner, tmp_path / "bad.xml", *platform_trust(tmp_path))

    assert code == 1
    assert "FAIL" in output


def test_proof_versions_are_kept(app: Flask, tmp_path: Path) -> None:
    document = create_document(create_citizen(), is_registered=True)
    assert make_proof(str(document.id)) == 1
    assert make_proof(str(document.id)) is None  # nothing new to prove
    confirm_receipt(document=document)
    db.session.commit()
    assert make_proof(str(document.id)) == 2
    versions = db.session.query(DeliveryProof).filter_by(document_id=document.id).all()
    assert sorted((proof.version, proof.evidence_count) for proof in versions) == [(1, 2), (2, 3)]


def test_a_comment_cannot_change_what_a_sealed_evidence_says(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    # The signature's canonical form leaves comments out: this still verifies with xmlsec1,
    # and a reader stopping at the comment would see a handover instead of a non-retrieval.
    document = create_document(create_citizen(), is_registered=True)
    expire(document)
    purge_expired()
    failure = chain_of(document.id)[-1]
    assert failure.event == "ContentHandoverFailure"
    forged = failure.xml.replace(
        b"event:ContentHandoverFailure<", b"event:ContentHandover<!---->Failure<"
    )
    assert forged != failure.xml
    (tmp_path / "forged.xml").write_bytes(forged)

    code, output = verify(runner, tmp_path / "forged.xml", *platform_trust(tmp_path))

    assert code == 1
    assert "FAIL evidence: no comments or processing instructions" in output
    assert "ContentHandover at" not in output


def test_a_repeated_fact_is_refused(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)
    root = etree.parse(str(xmls[0])).getroot()
    event_type = root.find("ev:EventType", NAMESPACES)
    assert event_type is not None
    event_type.addprevious(copy.deepcopy(event_type))
    (tmp_path / "twice.xml").write_bytes(etree.tostring(root))

    code, output = verify(runner, tmp_path / "twice.xml", *platform_trust(tmp_path))

    assert code == 1
    assert "FAIL evidence: follows the Evidence schema" in output
    assert "EventType" in output


def test_another_organisation_certified_by_the_same_ca_is_not_ebox(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    # Two leaves of one CA: eBox's seal, and someone else's.
    authority = make_ca("A certification authority")
    ebox_seal, other = (seal_of(authority, name) for name in ("eBox seal", "Another company"))
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    (tmp_path / "ebox-seal.pem").write_bytes(ebox_seal.cert_pem)
    chain = [build_and_seal(sample_facts("ContentHandover"), other)]
    (tmp_path / "other.xml").write_bytes(chain[0])
    (tmp_path / "other.pdf").write_bytes(render_proof(chain, language="en", version=1, seal=other))
    trust = ["--root", tmp_path / "ca.pem", "--seal-cert", tmp_path / "ebox-seal.pem"]

    for name in ("other.xml", "other.pdf"):
        code, output = verify(runner, tmp_path / name, *trust)
        assert code == 1, output
        assert "FAIL" in output and "sealed with eBox's sealing certificate" in output

    genuine = build_and_seal(sample_facts("ContentHandover"), ebox_seal)
    (tmp_path / "genuine.xml").write_bytes(genuine)
    code, output = verify(runner, tmp_path / "genuine.xml", *trust)
    assert code == 0, output


def test_with_a_timestamp_root_every_evidence_must_carry_a_timestamp(
    app: Flask, runner: FlaskCliRunner, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)  # sealed without a TSA

    code, output = verify(runner, xmls[0], "--tsa-root", tsa.ca_pem_path, *platform_trust(tmp_path))

    assert code == 1
    assert "no timestamp, though a timestamp root was given" in output


@pytest.mark.slow
def test_a_seal_certificate_expired_since_is_judged_at_the_trusted_timestamp(
    app: Flask, runner: FlaskCliRunner, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    authority = make_ca("A certification authority")
    short_lived = seal_of(authority, "eBox seal", valid_for=timedelta(seconds=4))
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    (tmp_path / "seal.pem").write_bytes(short_lived.cert_pem)
    chain = [build_and_seal(sample_facts("ContentHandover"), short_lived, tsa_url=tsa.url)]
    (tmp_path / "e.xml").write_bytes(chain[0])
    (tmp_path / "p.pdf").write_bytes(
        render_proof(chain, language="en", version=1, seal=short_lived, tsa_url=tsa.url)
    )
    time.sleep(5)  # the seal certificate has expired now
    trust = ["--root", tmp_path / "ca.pem", "--seal-cert", tmp_path / "seal.pem"]

    for name in ("e.xml", "p.pdf"):
        code, output = verify(runner, tmp_path / name, *trust, "--tsa-root", tsa.ca_pem_path)
        assert code == 0, output
        assert "valid at the timestamp" in output
        # Without a trusted time, only now counts, and now the certificate has expired.
        code, output = verify(runner, tmp_path / name, *trust)
        assert code == 1, output
