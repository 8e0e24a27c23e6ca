"""Offline verification of registered mail's proofs, for senders, their lawyers and judges.

Given sealed evidence XMLs or a PDF proof of delivery (whose evidence XMLs are attached inside
it), check everything that makes them proof and say what they prove, or exactly why not:

- each evidence: one enveloped XML signature covering the whole document (no other signed
  part, which would open the door to signature wrapping), RSA/ECDSA with SHA-256, made with a
  certificate that chains to the trusted root;
- its RFC 3161 timestamp, when it has one: the token covers this signature value, and is
  signed by an authority that chains to the timestamp root, when one is given;
- the chain: each evidence names the SHA-256 of the one before it, all about one message;
- a PDF: its PAdES signature intact, valid, trusted and covering the whole file, and its
  attached evidence checked as above.

Nothing here needs the database: only the files and the roots to trust.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import xmlsec
from asn1crypto import cms, tsp
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from lxml import etree
from pyhanko.pdf_utils.generic import ArrayObject, DictionaryObject
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    PathValidationError,
)
from xmlsec import constants

from ebox.evidence.xml import (
    DS,
    NS,
    SCHEMA_FILE,
    EvidenceFacts,
    EvidenceFormatError,
    digest,
    read_facts,
    schema_problem,
)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_EV = {"ev": NS, "ds": DS}
_SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
}
_TRANSFORMS = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
]
_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Evidence:
    """One verified evidence: what it states, its trusted time if any, and its digest."""

    facts: EvidenceFacts
    timestamp: datetime | None
    sha256: str


@dataclass
class Report:
    """The checks made on one file, in order; it proves something only if every check passed."""

    name: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for passed, _ in self.checks)

    def check(self, passed: bool, text: str) -> bool:
        self.checks.append((passed, text))
        return passed

    def lines(self) -> list[str]:
        lines = [f"{self.name}:"]
        lines += [f"  {'OK  ' if passed else 'FAIL'} {text}" for passed, text in self.checks]
        if self.ok and self.evidence:
            first = self.evidence[0].facts
            lines.append(
                f"  This proves, for message {first.platform_message_id} from "
                f"{first.sender_name} ({first.sender_enterprise_number}) "
                f"to {first.recipient_national_number} "
                f"(document SHA-256 {first.document_sha256}):"
            )
            for item in self.evidence:
                facts = item.facts
                stamped = f", timestamped {_utc(item.timestamp)}" if item.timestamp else ""
                lines.append(
                    f"    {facts.event} at {_utc(facts.event_time, precise=True)}{stamped} "
                    f"({facts.evidence_id})"
                )
                if facts.recipient_authentication is not None:
                    lines.append(f"      the recipient had logged in {_login(facts)}")
        elif not self.ok:
            lines.append("  This file does NOT prove anything: see FAIL above.")
        return lines


@dataclass(frozen=True)
class Trust:
    seal_root_pem: bytes
    # eBox's sealing certificates (the current one and any earlier ones): a certificate of
    # another organisation under the same CA must not pass for eBox's seal.
    seal_cert_pems: tuple[bytes, ...] = ()
    tsa_root_pem: bytes | None = None

    def is_seal(self, der: bytes) -> bool:
        return hashlib.sha256(der).digest() in {
            hashlib.sha256(_certificate(pem).dump()).digest() for pem in self.seal_cert_pems
        }


def verify_files(files: Sequence[tuple[str, bytes]], trust: Trust) -> list[Report]:
    """Verify PDF proofs and evidence XMLs; the XMLs given together are checked as one chain."""
    reports: list[Report] = []
    loose: list[Report] = []
    for name, data in files:
        if data.startswith(b"%PDF-"):
            reports.append(verify_pdf(name, data, trust))
        else:
            report = Report(name)
            _verify_evidence(report, data, trust)
            loose.append(report)
            reports.append(report)
    if len(loose) > 1 and all(report.ok for report in loose):
        chain = Report("the evidence given together")
        _check_chain(chain, [item for report in loose for item in report.evidence])
        reports.append(chain)
    return reports


def verify_pdf(name: str, data: bytes, trust: Trust) -> Report:
    report = Report(name)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as error:  # any parse failure means: not a proof we can read
        report.check(False, f"the PDF cannot be read: {error}")
        return report
    if not report.check(len(signatures) == 1, f"one signature ({len(signatures)} found)"):
        return report
    signature = signatures[0]
    tsa_context = (
        ValidationContext(trust_roots=[_certificate(trust.tsa_root_pem)])
        if trust.tsa_root_pem
        else None
    )
    try:
        status = _pdf_status(signature, trust, tsa_context, moment=None)
        token = status.timestamp_validity
        proven_time = (
            token.timestamp
            if token is not None and tsa_context is not None and token.trusted and token.valid
            else None
        )
        if proven_time is not None:
            # The seal certificate must have been valid when the timestamp proves the PDF
            # existed, not now: it expires years before the proof's retention ends.
            status = _pdf_status(signature, trust, tsa_context, moment=proven_time)
    except SignatureValidationError as error:
        report.check(False, f"the PDF signature does not validate: {error}")
        return report
    signer = status.signing_cert.subject.human_friendly
    report.check(status.intact and status.valid, f"the PDF signature is intact ({signer})")
    report.check(
        trust.is_seal(status.signing_cert.dump()),
        "the PDF is sealed with eBox's sealing certificate",
    )
    when = f"at the timestamp, {_utc(proven_time)}" if proven_time else "now"
    report.check(
        status.trusted, f"the PDF signer's certificate chains to the trusted root, valid {when}"
    )
    report.check(
        status.coverage is not None and status.coverage.name == "ENTIRE_FILE",
        "the signature covers the whole file (nothing added after signing)",
    )
    if token is not None:
        report.check(
            token.intact and token.valid and (tsa_context is None or token.trusted),
            f"the PDF signature is timestamped at {_utc(token.timestamp)}"
            + ("" if tsa_context is not None else " (authority not checked: no --tsa-root)"),
        )
    elif tsa_context is not None:
        report.check(False, "the PDF has no timestamp, though a timestamp root was given")
    if not report.ok:
        return report  # an unsigned or altered file's attachments prove nothing
    try:
        attached = _attachments(reader)
    except Exception as error:  # a damaged stream: say so rather than crash
        report.check(False, f"the attached evidence cannot be read: {error}")
        return report
    if not report.check(bool(attached), f"{len(attached)} evidence XML attached"):
        return report
    for file_name, xml in attached:
        _verify_evidence(report, xml, trust, label=file_name)
    if report.ok:
        _check_chain(report, report.evidence)
    return report


def _pdf_status(
    signature: Any, trust: Trust, tsa_context: ValidationContext | None, moment: datetime | None
) -> Any:
    seal_context = ValidationContext(
        trust_roots=[_certificate(trust.seal_root_pem)], moment=moment, allow_fetching=False
    )
    return validate_pdf_signature(
        signature, signer_validation_context=seal_context, ts_validation_context=tsa_context
    )


def _verify_evidence(report: Report, data: bytes, trust: Trust, label: str = "evidence") -> None:
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as error:
        report.check(False, f"{label}: not well-formed XML ({error})")
        return
    if root.getroottree().docinfo.doctype:
        report.check(False, f"{label}: a DTD is not allowed in evidence")
        return
    if not report.check(root.tag == f"{{{NS}}}Evidence", f"{label}: an eBox evidence document"):
        return
    if not _plain_structure(report, root, label):
        return
    signature = _the_signature(report, root, label)
    if signature is None:
        return
    signer = _signer(report, signature, trust, label)
    if signer is None or not _signature_verifies(report, signature, signer, label):
        return
    stamp = _timestamp(report, signature, trust, label)
    _certificate_valid(report, signer, trust, stamp, label)
    try:
        facts = read_facts(data)
    except EvidenceFormatError as error:
        report.check(False, f"{label}: {error}")
        return
    report.evidence.append(Evidence(facts=facts, timestamp=stamp, sha256=digest(data)))


def _plain_structure(report: Report, root: etree._Element, label: str) -> bool:
    """No comments or processing instructions (the signature's canonical form leaves comments
    out, so one could split a value unnoticed), and the Evidence schema followed: every fact
    in its place, once."""
    hidden = any(
        isinstance(node, etree._Comment | etree._ProcessingInstruction) for node in root.iter()
    )
    if not report.check(not hidden, f"{label}: no comments or processing instructions"):
        return False
    problem = schema_problem(root)
    return report.check(
        problem is None,
        f"{label}: follows the Evidence schema ({SCHEMA_FILE})"
        + (f": {problem}" if problem else ""),
    )


def _the_signature(report: Report, root: etree._Element, label: str) -> etree._Element | None:
    """The one signature, a child of the root, signing the whole document and nothing else."""
    signatures = root.findall(".//ds:Signature", _EV)
    if not report.check(
        len(signatures) == 1 and signatures[0].getparent() is root,
        f"{label}: exactly one signature, on the document itself",
    ):
        return None
    signature = signatures[0]
    references = signature.findall("ds:SignedInfo/ds:Reference", _EV)
    transforms = [
        node.get("Algorithm")
        for node in signature.iterfind("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", _EV)
    ]
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", _EV)
    digest_method = signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", _EV)
    covers_all = (
        len(references) == 1
        and references[0].get("URI") == ""
        and transforms == _TRANSFORMS
        and method is not None
        and method.get("Algorithm") in _SIGNATURE_METHODS
        and digest_method is not None
        and digest_method.get("Algorithm") == _SHA256
    )
    if not report.check(covers_all, f"{label}: the signature covers the whole document (SHA-256)"):
        return None
    return signature


def _signer(report: Report, signature: etree._Element, trust: Trust, label: str) -> bytes | None:
    """The DER certificate the evidence was sealed with, if it is eBox's seal and the only one."""
    certificates = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _EV)
    try:
        signer = (
            base64.b64decode("".join((certificates[0].text or "").split()), validate=True)
            if len(certificates) == 1
            else b""
        )
    except binascii.Error:
        signer = b""
    if not report.check(
        bool(signer) and trust.is_seal(signer),
        f"{label}: sealed with eBox's sealing certificate (and no other certificate given)",
    ):
        return None
    return signer


def _signature_verifies(
    report: Report, signature: etree._Element, signer: bytes, label: str
) -> bool:
    """The signature itself, with the seal's key: the certificate's validity is checked apart,
    at the time a trusted timestamp proves (a seal certificate expires long before its
    evidence does)."""
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(
        asn1_pem.armor("CERTIFICATE", signer), constants.KeyDataFormatCertPem
    )
    try:
        context.verify(signature)
    except xmlsec.Error:
        return report.check(False, f"{label}: the seal signature does not verify (altered)")
    return report.check(True, f"{label}: the seal signature verifies")


def _certificate_valid(
    report: Report, signer: bytes, trust: Trust, moment: datetime | None, label: str
) -> None:
    """The seal certificate chains to the trusted root and was valid at moment (a trusted
    timestamp's time), or now when there is none."""
    context = ValidationContext(
        trust_roots=[_certificate(trust.seal_root_pem)], moment=moment, allow_fetching=False
    )
    validator = CertificateValidator(asn1_x509.Certificate.load(signer), validation_context=context)
    when = f"at the timestamp, {_utc(moment)}" if moment else "now"
    try:
        asyncio.run(validator.async_validate_usage({"digital_signature"}))
    except (PathBuildingError, PathValidationError, InvalidCertificateError) as error:
        report.check(
            False, f"{label}: the seal certificate does not chain to the trusted root, "
            f"or was not valid {when}: {error}",
        )  # fmt: skip
        return
    report.check(True, f"{label}: the seal certificate chains to the trusted root, valid {when}")


def _timestamp(
    report: Report, signature: etree._Element, trust: Trust, label: str
) -> datetime | None:
    encoded = signature.findtext("ds:Object/ev:SignatureTimeStamp", namespaces=_EV)
    if encoded is None:
        if trust.tsa_root_pem:
            report.check(False, f"{label}: no timestamp, though a timestamp root was given")
        return None
    signature_value = base64.b64decode(signature.findtext("ds:SignatureValue", "", _EV))
    try:
        token = cms.ContentInfo.load(base64.b64decode(encoded))
        signed_data = token["content"]
        info = signed_data["encap_content_info"]["content"].parsed
        assert isinstance(info, tsp.TSTInfo)
        moment: datetime = info["gen_time"].native
    except Exception:  # a token we cannot read proves nothing
        report.check(False, f"{label}: the timestamp token cannot be read")
        return None
    # Without the authority's root, the token's integrity is still checked; its trust is not.
    context = ValidationContext(
        trust_roots=[_certificate(trust.tsa_root_pem or trust.seal_root_pem)]
    )
    expected = {"sha256": hashlib.sha256(signature_value).digest()}
    try:
        status = asyncio.run(
            validate_tst_signed_data(
                signed_data, context, lambda algorithm: expected.get(algorithm, b"")
            )
        )
    except SignatureValidationError as error:
        report.check(False, f"{label}: the timestamp does not validate: {error}")
        return None
    good = bool(status["intact"] and status["valid"])
    if trust.tsa_root_pem:
        good = good and status["trust_problem_indic"] is None
        where = "by a trusted authority"
    else:
        where = "(authority not checked: no --tsa-root)"
    report.check(good, f"{label}: the signature was timestamped at {_utc(moment)} {where}")
    # Only a time from a trusted authority is part of what the evidence proves.
    return moment if good and trust.tsa_root_pem else None


def _check_chain(report: Report, evidence: Iterable[Evidence]) -> None:
    items = list(evidence)
    by_previous = {item.facts.previous_evidence_sha256: item for item in items}
    ordered: list[Evidence] = []
    current = by_previous.get(None)
    while current is not None and len(ordered) < len(items):
        ordered.append(current)
        current = by_previous.get(current.sha256)
    report.check(
        len(ordered) == len(items) and len(by_previous) == len(items),
        f"the {len(items)} evidence form one unbroken chain, each naming the one before",
    )
    report.check(
        len({item.facts.platform_message_id for item in items}) == 1,
        "every evidence is about the same message",
    )
    if len(ordered) == len(items):
        report.evidence[:] = ordered


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


def _login(facts: EvidenceFacts) -> str:
    login = facts.recipient_authentication
    assert login is not None
    when = _utc(login.authenticated_at) if login.authenticated_at else "?"
    return (
        f"through {login.identity_provider or '?'} at {when} "
        f"with {login.authn_context or '?'} (assertion {login.assertion_id or '?'})"
    )


def _utc(moment: datetime, *, precise: bool = False) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S.%fZ}" if precise else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _certificate(pem: bytes | None) -> asn1_x509.Certificate:
    assert pem is not None
    _, _, der = asn1_pem.unarmor(pem)
    return asn1_x509.Certificate.load(der)
