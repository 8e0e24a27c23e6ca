"""What the verify command says: which trust it needs, which check failed and only that one, and
evidence whose times contradict each other."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner

from ebox.db_types import utcnow
from ebox.evidence.services import platform_seal
from tests.evidence.resealing import reseal
from tests.evidence.tsa_server import TimestampAuthority
from tests.evidence.verify_helpers import (
    opened_registered_document,
    platform_trust,
    proof_files,
    verify,
)


def failures(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith("FAIL")]


def test_the_root_and_the_sealing_certificate_to_trust_must_be_named(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    pdf, _ = proof_files(opened_registered_document(), tmp_path)
    _, root, _, seal = platform_trust(tmp_path)

    code, output = verify(runner, pdf)
    assert code == 2 and "Missing option '--root'" in output
    code, output = verify(runner, pdf, "--root", root)
    assert code == 2 and "Missing option '--seal-cert'" in output
    code, output = verify(runner, pdf, "--root", pdf, "--seal-cert", seal)
    assert code == 1 and f"{pdf} is not a PEM certificate" in output
    assert "OK" not in output  # nothing was checked

    help_text = runner.invoke(args=["ebox", "evidence", "verify", "--help"]).output
    assert "/evidence/seal-root.pem" in help_text and "Default" not in help_text


def test_an_altered_pdf_fails_its_integrity_and_only_that(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    pdf, _ = proof_files(opened_registered_document(), tmp_path)
    data = bytearray(pdf.read_bytes())
    inside_the_first_stream = data.index(b"stream\n") + 20
    data[inside_the_first_stream] ^= 0xFF
    pdf.write_bytes(bytes(data))

    code, output = verify(runner, pdf, *platform_trust(tmp_path))

    assert code == 1
    assert failures(output) == [
        "FAIL the PDF signature is intact (Common Name: eBox demo seal (not for production), "
        "Organization: eBox, Country: BE): the signed bytes were changed after signing "
        "(their digest no longer matches)"
    ]
    assert "OK   the PDF signer's certificate chains to the trusted root, valid now" in output
    assert "OK   the PDF is sealed with eBox's sealing certificate" in output


def test_an_unreadable_pdf_says_where_without_a_doubled_prefix(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    pdf, _ = proof_files(opened_registered_document(), tmp_path)
    data = pdf.read_bytes()
    broken = data.replace(b"<</Type /XRef", b"<<1Type /XRef", 1)  # a key that is not a name
    assert broken != data
    pdf.write_bytes(broken)

    code, output = verify(runner, pdf, *platform_trust(tmp_path))

    assert code == 1
    assert "FAIL the PDF cannot be read (damaged, or not a PDF): " in output
    assert "at byte 0x" in output and "0x0x" not in output


def test_an_evidence_stating_its_event_after_its_sealing_time_proves_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)
    sealed_at = utcnow()
    (tmp_path / "early.xml").write_bytes(
        reseal(
            xmls[2].read_bytes(),
            platform_seal(),
            event_time=sealed_at + timedelta(hours=1),
            sealing_time=sealed_at,
        )
    )

    code, output = verify(runner, tmp_path / "early.xml", *platform_trust(tmp_path))

    assert code == 1
    assert "OK   evidence: the seal signature verifies" in output  # genuinely sealed, yet
    assert failures(output) == [
        f"FAIL evidence: EventTime {sealed_at + timedelta(hours=1):%Y-%m-%dT%H:%M:%S.%fZ} is "
        f"after SealingTime {sealed_at:%Y-%m-%dT%H:%M:%S.%fZ}: the evidence records an event "
        "that had not happened when it was sealed"
    ]


def test_an_evidence_stating_its_event_after_its_timestamp_proves_nothing(
    app: Flask, runner: FlaskCliRunner, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    _, xmls = proof_files(opened_registered_document(), tmp_path)
    (tmp_path / "early.xml").write_bytes(
        reseal(
            xmls[2].read_bytes(),
            platform_seal(),
            event_time=utcnow() + timedelta(minutes=10),
            sealing_time=None,
            tsa_url=tsa.url,
        )
    )
    trust = [*platform_trust(tmp_path), "--tsa-root", tsa.ca_pem_path]

    code, output = verify(runner, tmp_path / "early.xml", *trust)

    assert code == 1
    assert "OK   evidence: the signature was timestamped at" in output
    [failure] = failures(output)
    assert "is after the time its timestamp allows (genTime " in failure
    assert failure.endswith("the signature existed before the event it records")


def test_a_timestamp_given_to_the_second_with_its_accuracy_covers_an_event_just_after_it(
    app: Flask, runner: FlaskCliRunner, tsa: TimestampAuthority, tmp_path: Path
) -> None:
    # The test authority writes genTime cut to the second and states an accuracy of 1 s: an
    # event 1.5 s after the moment of stamping is within what the token allows.
    _, xmls = proof_files(opened_registered_document(), tmp_path)
    event = utcnow() + timedelta(seconds=1.5)
    (tmp_path / "close.xml").write_bytes(
        reseal(
            xmls[2].read_bytes(),
            platform_seal(),
            event_time=event,
            sealing_time=event,
            tsa_url=tsa.url,
        )
    )
    trust = [*platform_trust(tmp_path), "--tsa-root", tsa.ca_pem_path]

    code, output = verify(runner, tmp_path / "close.xml", *trust)

    assert code == 0, output
    assert "is not after the time its timestamp allows (genTime " in output
