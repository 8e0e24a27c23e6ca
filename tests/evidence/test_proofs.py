"""The PDF proof of delivery, checked by verifiers nobody on this project wrote: pyHanko's
validator, poppler's pdfsig (trusting the demo root in a fresh NSS database), pdfdetach and
pdftotext."""

from __future__ import annotations

import io
import re
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem, tsp
from asn1crypto import x509 as asn1_x509
from flask import Flask
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from ebox.evidence.proofs import InvalidChain, read_chain, read_evidence, render_proof
from ebox.evidence.seal import Seal, demo_seal
from ebox.evidence.services import NOT_RETRIEVED
from ebox.evidence.timestamp import TimestampError
from ebox.evidence.xml import EvidenceFacts, RecipientAuthentication, build_and_seal, digest
from tests.evidence.samples import SUBMITTED, sample_facts
from tests.evidence.tsa_server import TimestampAuthority, unreachable_url
from tests.evidence.verifiers import pdfsig

HANDED_OVER = ("SubmissionAcceptance", "ContentConsignment", "ContentHandover")
NOT_HANDED_OVER = ("SubmissionAcceptance", "ContentConsignment", "ContentHandoverFailure")

Render = Callable[..., bytes]

# Outside programs (pdfsig, certutil, pdftotext, pdfdetach) and no database: the PostgreSQL run
# is enough.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> Seal:
    return demo_seal(tmp_path_factory.mktemp("seal"))


@pytest.fixture(scope="module")
def render(_migrated_app: Flask, seal: Seal) -> Render:
    """render_proof in an application context, with the demo seal."""

    def rendering(chain: list[bytes], language: str = "en", tsa_url: str | None = None) -> bytes:
        with _migrated_app.app_context():
            return render_proof(chain, language=language, version=2, seal=seal, tsa_url=tsa_url)

    return rendering


@pytest.fixture(scope="module")
def chain(seal: Seal) -> list[bytes]:
    return make_chain(seal, HANDED_OVER)


@pytest.fixture(scope="module")
def proof(render: Render, chain: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("proof") / "proof.pdf"
    path.write_bytes(render(chain))
    return path


def make_chain(seal: Seal, events: tuple[str, ...], **changes: Any) -> list[bytes]:
    """Sealed evidence of one document's events, each naming the digest of the one before."""
    message_id = str(uuid.uuid4())
    chain: list[bytes] = []
    for position, event in enumerate(events):
        previous = digest(chain[-1]) if chain else None
        facts = evidence_facts(event, message_id, position, previous, **changes)
        chain.append(build_and_seal(facts, seal))
    return chain


def evidence_facts(
    event: str, message_id: str, position: int, previous: str | None, **changes: Any
) -> EvidenceFacts:
    stated: dict[str, Any] = {
        "event_time": SUBMITTED + timedelta(hours=5 * position, seconds=1),
        "platform_message_id": message_id,
        "previous_evidence_sha256": previous,
        "reason": NOT_RETRIEVED if event == "ContentHandoverFailure" else None,
        "document_title": "Décision relative à votre pension",
        "document_file_name": "pension-decision-2026.pdf",
    }
    return sample_facts(event, **{**stated, **changes})


# --- the seal, as verifiers see it -------------------------------------------------------------


def validated(
    pdf: bytes, root_pem: bytes, *, tsa_root_pem: bytes | None = None
) -> PdfSignatureStatus:
    """pyHanko's verdict on the proof's one signature, trusting root_pem (and the TSA's root)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    [signature] = reader.embedded_signatures
    assert signature.field_name == "eBoxSeal"
    roots = [certificate(root_pem)] + ([certificate(tsa_root_pem)] if tsa_root_pem else [])
    context = ValidationContext(trust_roots=roots)
    return validate_pdf_signature(
        signature, signer_validation_context=context, ts_validation_context=context
    )


def certificate(pem_bytes: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(pem.unarmor(pem_bytes)[2])


def test_pyhanko_finds_the_seal_intact_valid_trusted_and_covering_the_whole_file(
    proof: Path, seal: Seal
) -> None:
    status = validated(proof.read_bytes(), seal.root_pem)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.signing_cert.subject.native["common_name"].startswith("eBox demo seal")
    assert status.md_algorithm == "sha256"
    assert status.timestamp_validity is None  # no timestamp authority given


def test_the_seal_is_pades(proof: Path) -> None:
    [signature] = PdfFileReader(io.BytesIO(proof.read_bytes())).embedded_signatures
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    signed = {attribute["type"].native for attribute in signature.signer_info["signed_attrs"]}
    assert "signing_certificate_v2" in signed  # PAdES binds the signer's certificate
    assert "signing_time" not in signed  # PAdES keeps the time in the signature dictionary


def test_pdfsig_finds_the_seal_valid_and_trusted(proof: Path, seal: Seal, tmp_path: Path) -> None:
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    report = pdfsig(proof, tmp_path / "root.pem", tmp_path / "nss")
    assert "Signature Field Name: eBoxSeal" in report
    assert "Signature is Valid." in report
    assert "Certificate is Trusted." in report
    assert "Total document signed" in report


def test_the_seal_is_not_trusted_under_another_root(
    proof: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    stranger = demo_seal(tmp_path_factory.mktemp("stranger"))
    status = validated(proof.read_bytes(), stranger.root_pem)
    assert status.intact and not status.trusted
    (tmp_path / "root.pem").write_bytes(stranger.root_pem)
    report = pdfsig(proof, tmp_path / "root.pem", tmp_path / "nss")
    assert "Signature is Valid." in report
    assert "Certificate is Trusted." not in report


def test_one_changed_byte_is_caught_by_pyhanko_and_pdfsig(
    proof: Path, seal: Seal, tmp_path: Path
) -> None:
    pdf = proof.read_bytes()
    offset = middle_of_largest_signed_stream(pdf)
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(pdf[:offset] + bytes([pdf[offset] ^ 0x01]) + pdf[offset + 1 :])

    status = validated(changed.read_bytes(), seal.root_pem)
    assert not status.intact and not status.bottom_line
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    report = pdfsig(changed, tmp_path / "root.pem", tmp_path / "nss")
    assert "Signature is Valid." not in report
    assert "Digest Mismatch." in report


def middle_of_largest_signed_stream(pdf: bytes) -> int:
    """A byte of page content or font data: inside the signed range, outside the signature's
    /Contents, and where changing it leaves the file readable."""
    signed_end = int(re.findall(rb"/ByteRange \[\s*0 (\d+)", pdf)[-1])
    streams = [
        (match.end(), pdf.index(b"endstream", match.end()))
        for match in re.finditer(rb"(?<!end)stream\r?\n", pdf)
    ]
    start, end = max(
        (span for span in streams if span[1] < signed_end), key=lambda span: span[1] - span[0]
    )
    return (start + end) // 2


# --- what it carries and says ------------------------------------------------------------------


def test_the_attachments_are_the_evidence_byte_for_byte(
    proof: Path, chain: list[bytes], tmp_path: Path
) -> None:
    subprocess.run(
        ["pdfdetach", "-saveall", "-o", str(tmp_path), str(proof)], check=True, capture_output=True
    )
    extracted = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    facts = [read_evidence(item).facts for item in chain]
    expected = {
        f"evidence-{position:02d}-{item.event}-{item.evidence_id}.xml": xml
        for position, (item, xml) in enumerate(zip(facts, chain, strict=True), start=1)
    }
    assert extracted == expected


def test_the_attachments_are_declared_as_xml(proof: Path) -> None:
    reader = PdfFileReader(io.BytesIO(proof.read_bytes()))
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    specs = [names[index].get_object() for index in range(1, len(names), 2)]
    assert len(specs) == 3
    assert {spec["/EF"]["/F"].get_object()["/Subtype"] for spec in specs} == {"/application/xml"}


def pdf_text(pdf: bytes, folder: Path) -> str:
    (folder / "proof.pdf").write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", str(folder / "proof.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return " ".join(result.stdout.split())


def test_it_states_the_facts_of_the_evidence(
    proof: Path, chain: list[bytes], tmp_path: Path
) -> None:
    text = pdf_text(proof.read_bytes(), tmp_path)
    stated = read_chain(chain)
    assert "Proof of delivery" in text
    for fact in (
        "eBox",
        "https://ebox.example",
        "Federal Pension Service",
        "0123456749",
        "85073003328",
        "Décision relative à votre pension",
        "pension-decision-2026.pdf",
        "4f" * 32,
        stated.message.platform_message_id,
        "PENSION-2026-000123",
        "November 28, 2026, 08:00:00 UTC",  # submission
        "Accepted for delivery by the platform",
        "Made available in the recipient's eBox",
        "Opened by the recipient",
        "18:00:01 UTC",  # the handover, five hours after the consignment
        "version 2",
        *(item.facts.evidence_id for item in stated.evidence),
    ):
        assert fact in text, fact


@pytest.mark.parametrize(
    ("language", "wanted"),
    [
        ("fr", ["Preuve de remise", "Ouvert par le destinataire", "28 novembre 2026", "Déposé le"]),
        ("de", ["Zustellnachweis", "Vom Empfänger geöffnet", "28. November 2026", "Titel"]),
        ("nl", ["Bewijs van aflevering", "Geopend door de bestemmeling", "28 november 2026"]),
    ],
)
def test_it_speaks_the_language_asked_for(
    render: Render, chain: list[bytes], tmp_path: Path, language: str, wanted: list[str]
) -> None:
    text = pdf_text(render(chain, language=language), tmp_path)
    for phrase in wanted:
        assert phrase in text, phrase
    assert "Proof of delivery" not in text and "National register number" not in text


def test_a_non_retrieval_states_its_reason(render: Render, seal: Seal, tmp_path: Path) -> None:
    chain = make_chain(seal, NOT_HANDED_OVER)
    english = pdf_text(render(chain), tmp_path)
    assert "Not opened before its expiry" in english
    assert NOT_RETRIEVED in english
    french = pdf_text(render(chain, language="fr"), tmp_path)
    assert "n’a pas été ouvert avant son expiration" in french


def test_a_handover_states_how_the_recipient_had_logged_in(
    render: Render, seal: Seal, tmp_path: Path
) -> None:
    login = RecipientAuthentication(
        identity_provider="https://idp.federation.example",
        authn_context="urn:be:fedict:iam:fas:citizen:eid",
        authenticated_at=SUBMITTED + timedelta(hours=9),
        assertion_id="_assertion-4711",
    )
    message_id = str(uuid.uuid4())
    chain: list[bytes] = []
    for position, event in enumerate(HANDED_OVER):
        changes = {"recipient_authentication": login} if event == "ContentHandover" else {}
        previous = digest(chain[-1]) if chain else None
        facts = evidence_facts(event, message_id, position, previous, **changes)
        chain.append(build_and_seal(facts, seal))

    pdf = render(chain)
    text = " ".join(pdf_text(pdf, tmp_path).split())

    assert "Recipient logged in through https://idp.federation.example" in text
    assert text.count("Recipient logged in") == 1  # under the handover only
    assert "1/1" in text  # still one page
    assert "urn:be:fedict:iam:fas:citizen:eid" in text and "_assertion-4711" in text


def test_evidence_from_before_titles_were_recorded_gives_a_proof_without_them(
    render: Render, seal: Seal, tmp_path: Path
) -> None:
    chain = make_chain(seal, HANDED_OVER[:2], document_title=None, document_file_name=None)
    text = pdf_text(render(chain), tmp_path)
    assert "PENSION-2026-000123" in text
    assert "File name" not in text and "pension-decision-2026.pdf" not in text


# --- what it refuses ---------------------------------------------------------------------------


def test_a_broken_or_mixed_chain_is_refused(seal: Seal, chain: list[bytes]) -> None:
    other = make_chain(seal, HANDED_OVER)
    with pytest.raises(InvalidChain, match="does not follow"):
        read_chain([chain[0], chain[2]])  # one left out
    with pytest.raises(InvalidChain, match="does not follow"):
        read_chain([chain[1], chain[0]])  # reordered
    with pytest.raises(InvalidChain):
        read_chain([chain[0], other[1]])  # another document's
    with pytest.raises(InvalidChain):
        read_chain([])
    assert len(read_chain(chain).evidence) == 3


def test_evidence_of_another_message_is_refused_even_when_linked(seal: Seal) -> None:
    first = make_chain(seal, HANDED_OVER[:1])
    second = make_chain(seal, HANDED_OVER[:1], previous_evidence_sha256=digest(first[0]))
    with pytest.raises(InvalidChain, match="another message"):
        read_chain([first[0], second[0]])


def test_a_sender_renamed_between_two_events_is_still_the_same_message(seal: Seal) -> None:
    message_id = str(uuid.uuid4())
    first = build_and_seal(evidence_facts("SubmissionAcceptance", message_id, 0, None), seal)
    renamed = evidence_facts(
        "ContentConsignment", message_id, 1, digest(first), sender_name="Federal Pensions Service"
    )
    proof = read_chain([first, build_and_seal(renamed, seal)])
    assert proof.message.sender_name == "Federal Pension Service"  # as when it was submitted


def test_an_unknown_language_is_refused(render: Render, chain: list[bytes]) -> None:
    with pytest.raises(ValueError, match="language"):
        render(chain, language="es")


# --- with a timestamp authority -------------------------------------------------------------------


def test_with_a_timestamp_authority_the_seal_is_pades_b_t(
    render: Render, chain: list[bytes], seal: Seal, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    pdf = render(chain, tsa_url=tsa.url)
    status = validated(pdf, seal.root_pem, tsa_root_pem=tsa.ca_pem_path.read_bytes())
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    stamp = status.timestamp_validity
    assert stamp is not None, "no signature timestamp"
    assert stamp.intact and stamp.valid and stamp.trusted, stamp
    assert before <= stamp.timestamp <= datetime.now(UTC)

    (tmp_path / "proof.pdf").write_bytes(pdf)
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    report = pdfsig(tmp_path / "proof.pdf", tmp_path / "root.pem", tmp_path / "nss")
    assert "Signature is Valid." in report and "Certificate is Trusted." in report


def test_a_timestamp_from_an_untrusted_authority_is_not_trusted(
    render: Render, chain: list[bytes], seal: Seal, tsa: TimestampAuthority
) -> None:
    status = validated(render(chain, tsa_url=tsa.url), seal.root_pem)  # TSA root not given
    assert status.intact and status.trusted
    assert status.timestamp_validity is not None and not status.timestamp_validity.trusted


def another_imprint(query: bytes) -> bytes:
    """The query as sent, but for a digest of other data: the reply covers something else."""
    native = tsp.TimeStampReq.load(query).native
    native["message_imprint"]["hashed_message"] = bytes(32)
    return bytes(tsp.TimeStampReq(native).dump())


def test_no_proof_without_the_timestamp_it_was_asked_for(
    render: Render, chain: list[bytes], tmp_path: Path
) -> None:
    with pytest.raises(TimestampError, match="Connection refused"):
        render(chain, tsa_url=unreachable_url())
    with (
        TimestampAuthority(tmp_path / "tsa", alter_query=another_imprint) as liar,
        pytest.raises(TimestampError, match="timestamped another digest than asked"),
    ):
        render(chain, tsa_url=liar.url)
