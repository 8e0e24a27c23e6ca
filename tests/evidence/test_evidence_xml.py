"""Sealed evidence checks out with a verifier nobody on this project wrote: xmlsec1."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from ebox.evidence.seal import Seal, demo_seal
from ebox.evidence.timestamp import TimestampError
from ebox.evidence.xml import (
    NAMESPACES,
    NS,
    EvidenceFacts,
    build_and_seal,
    digest,
    signature_timestamp,
)
from tests.evidence.samples import sample_facts
from tests.evidence.tsa_server import TimestampAuthority, openssl_ts_verify, unreachable_url


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> Seal:
    return demo_seal(tmp_path_factory.mktemp("seal"))


@pytest.fixture(scope="module")
def other_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("other") / "root.pem"


def facts(event: str = "ContentHandover", previous: str | None = None) -> EvidenceFacts:
    return sample_facts(event, previous_evidence_sha256=previous)


def xmlsec1_verify(
    xml: bytes, trusted_root: bytes, folder: Path
) -> subprocess.CompletedProcess[str]:
    (folder / "evidence.xml").write_bytes(xml)
    (folder / "root.pem").write_bytes(trusted_root)
    return subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--trusted-pem",
            str(folder / "root.pem"),
            str(folder / "evidence.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_sealed_evidence_verifies_against_the_root_ca(seal: Seal, tmp_path: Path) -> None:
    xml = build_and_seal(facts(), seal)
    result = xmlsec1_verify(xml, seal.root_pem, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr


def test_it_states_the_facts_and_the_previous_evidence(seal: Seal) -> None:
    first = build_and_seal(facts("SubmissionAcceptance"), seal)
    second = build_and_seal(facts("ContentConsignment", previous=digest(first)), seal)
    root = etree.fromstring(second)
    ns = {"ev": NS}
    assert root.findtext("ev:EventType", namespaces=ns).endswith("ContentConsignment")
    assert root.findtext("ev:EventTime", namespaces=ns) == "2026-11-29T09:30:00.000000Z"
    assert root.findtext("ev:Recipient/ev:NationalNumber", namespaces=ns) == "85073003328"
    assert root.findtext("ev:Message/ev:DocumentDigest", namespaces=ns) == "4f" * 32
    assert root.findtext("ev:PreviousEvidenceDigest", namespaces=ns) == digest(first)


@pytest.mark.parametrize(
    "change",
    [
        (b"85073003328", b"85073003329"),  # another recipient
        (b"2026-11-29T09:30", b"2026-11-29T09:31"),  # another time
        (b"ContentHandover<", b"ContentConsignment<"),  # another event
    ],
)
def test_an_altered_evidence_is_refused(
    seal: Seal, tmp_path: Path, change: tuple[bytes, bytes]
) -> None:
    xml = build_and_seal(facts(), seal)
    assert change[0] in xml
    result = xmlsec1_verify(xml.replace(*change), seal.root_pem, tmp_path)
    assert result.returncode != 0


def test_an_evidence_is_not_trusted_under_another_root(
    seal: Seal, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    stranger = demo_seal(tmp_path_factory.mktemp("stranger"))
    result = xmlsec1_verify(build_and_seal(facts(), seal), stranger.root_pem, tmp_path)
    assert result.returncode != 0


def test_title_and_file_name_are_stated_when_known(seal: Seal) -> None:
    known = dataclasses.replace(
        facts(), document_title="Pension décision 2027", document_file_name="decision.pdf"
    )
    message = etree.fromstring(build_and_seal(known, seal)).find("ev:Message", NAMESPACES)
    assert message is not None
    assert message.findtext("ev:Title", namespaces=NAMESPACES) == "Pension décision 2027"
    assert message.findtext("ev:FileName", namespaces=NAMESPACES) == "decision.pdf"
    names = [etree.QName(child).localname for child in message]
    assert names.index("SubmissionTime") < names.index("Title") < names.index("FileName")
    assert names.index("FileName") < names.index("DocumentDigest")


def test_title_and_file_name_are_absent_when_unknown(seal: Seal) -> None:
    message = etree.fromstring(build_and_seal(facts(), seal)).find("ev:Message", NAMESPACES)
    assert message is not None
    assert message.find("ev:Title", NAMESPACES) is None
    assert message.find("ev:FileName", NAMESPACES) is None


def test_a_timestamped_evidence_still_verifies_with_xmlsec1(
    seal: Seal, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    xml = build_and_seal(facts(), seal, tsa_url=tsa.url)
    stamp = etree.fromstring(xml).find("ds:Signature/ds:Object/ev:SignatureTimeStamp", NAMESPACES)
    assert stamp is not None and stamp.text
    result = xmlsec1_verify(xml, seal.root_pem, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_timestamp_covers_the_signature_value(
    seal: Seal, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    xml = build_and_seal(facts(), seal, tsa_url=tsa.url)
    found = signature_timestamp(xml)
    assert found is not None
    token, signature_value = found
    written = etree.fromstring(xml).findtext("ds:Signature/ds:SignatureValue", "", NAMESPACES)
    assert signature_value == base64.b64decode(written)
    result = openssl_ts_verify(tsa, signature_value, token, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


def test_the_timestamp_does_not_cover_another_signature_value(
    seal: Seal, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    root = etree.fromstring(build_and_seal(facts(), seal, tsa_url=tsa.url))
    value = root.find("ds:Signature/ds:SignatureValue", NAMESPACES)
    assert value is not None and value.text
    original = base64.b64decode(value.text)
    value.text = base64.b64encode(original[:-1] + bytes([original[-1] ^ 1])).decode()
    found = signature_timestamp(etree.tostring(root))
    assert found is not None
    token, changed = found
    assert changed != original
    result = openssl_ts_verify(tsa, changed, token, tmp_path)
    assert result.returncode != 0
    assert "imprint mismatch" in result.stderr


def test_an_evidence_without_timestamp_has_none(seal: Seal) -> None:
    assert signature_timestamp(build_and_seal(facts(), seal)) is None


def test_no_evidence_without_the_promised_timestamp(seal: Seal) -> None:
    with pytest.raises(TimestampError, match="unreachable"):
        build_and_seal(facts(), seal, tsa_url=unreachable_url())
