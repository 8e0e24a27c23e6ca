"""Offline verification of registered mail's proofs, for senders, their lawyers and judges.

Given sealed evidence XMLs or a PDF proof of delivery (whose evidence XMLs are attached inside
it), check everything that makes them proof and say what they prove, or exactly why not:

- each evidence: one enveloped XML signature covering the whole document (no other signed
  part, which would open the door to signature wrapping), RSA/ECDSA with SHA-256, made with
  one of eBox's seal certificates (the current one or an earlier one) that chains to a trusted
  root, directly or through intermediate CAs;
- its RFC 3161 timestamp, when it has one: the token covers this signature value, and is
  signed by an authority that chains to the timestamp root, when one is given;
- its times: the event it records happened by the time it states it was sealed and by the
  time its timestamp proves the signature existed (within CLOCK_SKEW, and the token's own
  accuracy);
- the chain: each evidence names the SHA-256 of the one before it, all about one message;
- a PDF: its PAdES signature intact, valid, trusted and covering the whole file, and its
  attached evidence checked as above.

Each check is evaluated on its own, so that a report names what failed and only that: an
altered PDF fails its integrity while its signer's certificate is still judged.

This module reads the trust and the PDF proofs; ebox.evidence.verify_evidence checks each
evidence and a chain, ebox.evidence.verify_report holds the reports and what is trusted.
Nothing here needs the database: only the files and the roots to trust.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.generic import ArrayObject, DictionaryObject
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from ebox.evidence.verify_evidence import check_chain, verify_evidence
from ebox.evidence.verify_report import (
    Report,
    Trust,
    check_certificate,
    load_certificate,
    said,
    utc,
)

MAX_FILE_BYTES = 50 * 1024 * 1024
# A PDF seal commits to what it signs: pyHanko's own policy for PDF signers.
_SEAL_USAGE = {"non_repudiation"}


def load_trust(
    *, roots: Sequence[Path], seal_certs: Sequence[Path], tsa_root: Path | None
) -> Trust:
    """The trust anchors, from PEM files; ValueError naming a file that is not a certificate.

    Every file may hold several certificates. Those of seal_certs that are CA certificates
    (an intermediate following the seal certificate in its file) are links to a root, never
    seals; the others are eBox's seal certificates."""
    root_pems = [pem for path in roots for pem in _certificate_file(path)]
    given = [pem for path in seal_certs for pem in _certificate_file(path)]
    tsa = _certificate_file(tsa_root) if tsa_root else None
    if tsa is not None and len(tsa) != 1:
        raise ValueError(f"{tsa_root} must hold one certificate, the timestamp authority's root")
    return Trust(
        seal_root_pems=tuple(root_pems),
        seal_cert_pems=tuple(pem for pem in given if not load_certificate(pem).ca),
        tsa_root_pem=tsa[0] if tsa else None,
        intermediate_pems=tuple(pem for pem in given if load_certificate(pem).ca),
    )


def _certificate_file(path: Path) -> list[bytes]:
    """Every certificate of a PEM file, each as PEM."""
    data = path.read_bytes()
    found = []
    try:
        for kind, _, der in asn1_pem.unarmor(data, multiple=True):
            if kind != "CERTIFICATE":
                raise ValueError(f"it holds a {kind}")
            pem = asn1_pem.armor("CERTIFICATE", der)
            # Read in full now: a damaged field fails here rather than in the middle of a report.
            load_certificate(pem).native  # noqa: B018
            found.append(pem)
    except ValueError as error:
        raise ValueError(f"{path} is not a PEM certificate: {said(error)}") from None
    if not found:
        raise ValueError(f"{path} is not a PEM certificate: it holds none")
    return found


def verify_files(files: Sequence[tuple[str, bytes]], trust: Trust) -> list[Report]:
    """Verify PDF proofs and evidence XMLs; the XMLs given together are checked as one chain."""
    reports: list[Report] = []
    loose: list[Report] = []
    for name, data in files:
        if data.startswith(b"%PDF-"):
            reports.append(verify_pdf(name, data, trust))
        else:
            report = Report(name)
            verify_evidence(report, data, trust)
            loose.append(report)
            reports.append(report)
    if len(loose) > 1 and all(report.ok for report in loose):
        chain = Report("the evidence given together")
        check_chain(chain, [item for report in loose for item in report.evidence])
        reports.append(chain)
    return reports


def verify_pdf(name: str, data: bytes, trust: Trust) -> Report:
    report = Report(name)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as error:  # any parse failure means: not a proof we can read
        report.check(False, f"the PDF cannot be read (damaged, or not a PDF): {said(error)}")
        return report
    if not report.check(len(signatures) == 1, f"one signature ({len(signatures)} found)"):
        return report
    signature = signatures[0]
    tsa_context = (
        ValidationContext(trust_roots=[load_certificate(trust.tsa_root_pem)])
        if trust.tsa_root_pem
        else None
    )
    try:
        status = _pdf_status(signature, trust, tsa_context)
    # A damaged signature makes pyHanko or asn1crypto raise (of any kind) rather than report.
    except Exception as error:
        report.check(False, f"the PDF signature cannot be validated: {said(error)}")
        return report
    token = status.timestamp_validity
    proven_time = (
        token.timestamp
        if token is not None and tsa_context is not None and token.trusted and token.valid
        else None
    )
    _check_pdf_integrity(report, status)
    _check_pdf_sealer(report, status.signing_cert, trust)
    # The seal certificate must have been valid when the timestamp proves the PDF existed, not
    # now: it expires years before the proof's retention ends.
    check_certificate(
        report,
        status.signing_cert,
        trust,
        proven_time,
        subject="the PDF signer's certificate",
        usage=_SEAL_USAGE,
        intermediates=list(signature.other_embedded_certs),
    )
    report.check(
        status.coverage is not None and status.coverage.name == "ENTIRE_FILE",
        "the signature covers the whole file (nothing added after signing)",
        why="content was added after signing (a PDF reader may show what was not signed)",
    )
    _check_pdf_timestamp(report, token, tsa_context is not None)
    if not report.ok:
        return report  # an unsigned or altered file's attachments prove nothing
    try:
        attached = _attachments(reader)
    except Exception as error:  # a damaged stream: say so rather than crash
        report.check(False, f"the attached evidence cannot be read: {said(error)}")
        return report
    if not report.check(bool(attached), f"{len(attached)} evidence XML attached"):
        return report
    for file_name, xml in attached:
        verify_evidence(report, xml, trust, label=file_name)
    if report.ok:
        check_chain(report, report.evidence)
    return report


def _check_pdf_integrity(report: Report, status: Any) -> None:
    report.check(
        status.intact and status.valid,
        f"the PDF signature is intact ({status.signing_cert.subject.human_friendly})",
        why="the signed bytes were changed after signing (their digest no longer matches)"
        if not status.intact
        else "the signature value does not verify with the signer's key",
    )


def _check_pdf_sealer(report: Report, signer: asn1_x509.Certificate, trust: Trust) -> None:
    report.check(
        trust.is_seal(signer.dump()),
        "the PDF is sealed with eBox's sealing certificate",
        why=f"its signer ({signer.subject.human_friendly}, serial {signer.serial_number}) is "
        "none of those given with --seal-cert",
    )


def _check_pdf_timestamp(report: Report, token: Any, authority_given: bool) -> None:
    if token is None:
        if authority_given:
            report.check(False, "the PDF has no timestamp, though a timestamp root was given")
        return
    if not (token.intact and token.valid):
        why = "the token does not match the signature or was altered"
    else:
        why = "its authority does not chain to --tsa-root"
    report.check(
        token.intact and token.valid and (token.trusted or not authority_given),
        f"the PDF signature is timestamped at {utc(token.timestamp)}"
        + ("" if authority_given else " (authority not checked: no --tsa-root)"),
        why=why,
    )


def _pdf_status(signature: Any, trust: Trust, tsa_context: ValidationContext | None) -> Any:
    seal_context = ValidationContext(
        trust_roots=trust.roots(), other_certs=trust.intermediates(), allow_fetching=False
    )
    return validate_pdf_signature(
        signature, signer_validation_context=seal_context, ts_validation_context=tsa_context
    )


def _attachments(reader: PdfFileReader) -> list[tuple[str, bytes]]:
    """The embedded files of the PDF's EmbeddedFiles name tree, by name."""
    names = reader.root.get("/Names")
    if not isinstance(names, DictionaryObject) or "/EmbeddedFiles" not in names:
        return []
    found: list[tuple[str, bytes]] = []
    pending = [names["/EmbeddedFiles"]]
    while pending:
        node = pending.pop()
        if "/Kids" in node:
            pending.extend(node["/Kids"])
        pairs = node.get("/Names", ArrayObject())
        for position in range(0, len(pairs) - 1, 2):
            spec = pairs[position + 1]
            stream = spec["/EF"]["/F"]
            found.append((str(pairs[position]), stream.data))
    return sorted(found)
