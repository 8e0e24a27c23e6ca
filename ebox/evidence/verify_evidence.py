"""Checks of one sealed evidence XML, and of evidence given together as one message's chain.

An evidence proves something only with one enveloped XML signature covering the whole document
(no other signed part, which would open the door to signature wrapping), RSA/ECDSA with SHA-256,
made with one of eBox's sealing certificates chaining to a trusted root (directly, or through
the intermediate CA certificates the signature carries beside it); its RFC 3161 timestamp, when
it has one, covering this signature value and signed by an authority under the timestamp root,
when one is given; and times that agree: the event it records happened by the time it states it
was sealed and by the time its timestamp proves the signature existed (within CLOCK_SKEW, and
the token's own accuracy).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import xmlsec
from asn1crypto import cms, tsp
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from lxml import etree
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext
from xmlsec import constants

from ebox.evidence.verify_report import (
    Evidence,
    Report,
    Trust,
    check_certificate,
    load_certificate,
    said,
    utc,
)
from ebox.evidence.xml import (
    CLOCK_SKEW,
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
# An XML seal signs (a PDF seal commits: see ebox.evidence.verify).
_SEAL_USAGE = {"digital_signature"}


@dataclass(frozen=True)
class _Stamp:
    """An evidence's timestamp token, intact and covering its signature value."""

    time: datetime  # genTime
    latest: datetime  # the latest moment the token allows: genTime, its accuracy, its precision
    stated: str  # genTime as the authority wrote it, and its accuracy
    trusted: bool  # signed by an authority that chains to the timestamp root given


def verify_evidence(report: Report, data: bytes, trust: Trust, label: str = "evidence") -> None:
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as error:
        report.check(False, f"{label}: not well-formed XML ({error})")
        return
    if root.getroottree().docinfo.doctype:
        report.check(False, f"{label}: a DTD is not allowed in evidence")
        return
    if not report.check(
        root.tag == f"{{{NS}}}Evidence",
        f"{label}: an eBox evidence document",
        why=f"its root element is {root.tag}, not {{{NS}}}Evidence",
    ):
        return
    if not _plain_structure(report, root, label):
        return
    signature = _the_signature(report, root, label)
    if signature is None:
        return
    found = _signer(report, signature, trust, label)
    if found is None:
        return
    signer, intermediates = found
    if not _signature_verifies(report, signature, signer, label):
        return
    stamp = _timestamp(report, signature, trust, label)
    # Only a time from a trusted authority is part of what the evidence proves.
    proven = stamp.time if stamp is not None and stamp.trusted else None
    check_certificate(
        report,
        asn1_x509.Certificate.load(signer),
        trust,
        proven,
        subject=f"{label}: the seal certificate",
        usage=_SEAL_USAGE,
        intermediates=intermediates,
    )
    try:
        facts = read_facts(data)
    except EvidenceFormatError as error:
        report.check(False, f"{label}: {error}")
        return
    _check_event_time(report, facts, stamp, label)
    report.evidence.append(Evidence(facts=facts, timestamp=proven, sha256=digest(data)))


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
        why=f"{len(signatures)} found" if len(signatures) != 1 else "it is nested deeper",
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
    if not report.check(
        covers_all,
        f"{label}: the signature covers the whole document (SHA-256)",
        why='it is not one reference to the whole document (URI ""), with only the '
        "enveloped-signature and exclusive C14N transforms, RSA or ECDSA and SHA-256",
    ):
        return None
    return signature


def _signer(
    report: Report, signature: etree._Element, trust: Trust, label: str
) -> tuple[bytes, list[asn1_x509.Certificate]] | None:
    """The DER certificate the evidence was sealed with, if it is one of eBox's seals, and the
    intermediate CA certificates given beside it; None when anything else is given with it."""
    texts = [
        node.text or ""
        for node in signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _EV)
    ]
    signer, intermediates, why = b"", [], "the signature names no certificate"
    try:
        given = [base64.b64decode("".join(text.split()), validate=True) for text in texts]
        parsed = [asn1_x509.Certificate.load(der) for der in given]
        seals = [der for der in given if trust.is_seal(der)]
        others = [item for item, der in zip(parsed, given, strict=True) if der not in seals]
        if given and not seals:
            why = "its certificate is none of those given with --seal-cert"
        elif len(seals) > 1:
            why = "it names more than one seal certificate"
        elif any(not item.ca for item in others):
            why = "it names another certificate beside the seal that is not a CA certificate"
        elif seals:
            signer, intermediates = seals[0], others
    except (binascii.Error, ValueError, TypeError):
        why = "a ds:X509Certificate is not a certificate in base64"
    if not report.check(
        bool(signer),
        f"{label}: sealed with eBox's sealing certificate (no other certificate given but its "
        "intermediate CAs)",
        why=why,
    ):
        return None
    return signer, intermediates


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
        return report.check(
            False,
            f"{label}: the seal signature does not verify: the evidence was changed after it "
            "was sealed, or not sealed with this certificate's key",
        )
    return report.check(True, f"{label}: the seal signature verifies")


def _check_event_time(
    report: Report, facts: EvidenceFacts, stamp: _Stamp | None, label: str
) -> None:
    """An evidence cannot record an event that had not happened yet when it was sealed: by the
    SealingTime it states, nor by the time its timestamp proves its signature existed."""
    event = utc(facts.event_time, precise=True)
    if facts.sealing_time is not None:
        sealed = utc(facts.sealing_time, precise=True)
        if facts.event_time <= facts.sealing_time + CLOCK_SKEW:
            report.check(True, f"{label}: EventTime {event} is not after SealingTime {sealed}")
        else:
            report.check(
                False, f"{label}: EventTime {event} is after SealingTime {sealed}: the evidence "
                "records an event that had not happened when it was sealed",
            )  # fmt: skip
    if stamp is None:
        return
    allows = f"the time its timestamp allows (genTime {stamp.stated})"
    if facts.event_time <= stamp.latest + CLOCK_SKEW:
        report.check(True, f"{label}: EventTime {event} is not after {allows}")
    else:
        report.check(
            False, f"{label}: EventTime {event} is after {allows}: the signature existed "
            "before the event it records",
        )  # fmt: skip


def _timestamp(
    report: Report, signature: etree._Element, trust: Trust, label: str
) -> _Stamp | None:
    """The evidence's timestamp, checked: None when it has none or it does not validate."""
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
        latest, stated = _token_time(info)
    except Exception:  # a token we cannot read proves nothing
        report.check(False, f"{label}: the timestamp token cannot be read")
        return None
    # Without the authority's root, the token's integrity is still checked; its trust is not.
    context = ValidationContext(
        trust_roots=[load_certificate(trust.tsa_root_pem or trust.seal_root_pems[0])]
    )
    expected = {"sha256": hashlib.sha256(signature_value).digest()}
    try:
        status = asyncio.run(
            validate_tst_signed_data(
                signed_data, context, lambda algorithm: expected.get(algorithm, b"")
            )
        )
    except SignatureValidationError as error:
        report.check(False, f"{label}: the timestamp does not validate: {said(error)}")
        return None
    intact = bool(status["intact"] and status["valid"])
    trusted = intact and bool(trust.tsa_root_pem) and status["trust_problem_indic"] is None
    if not intact:
        where = "but the token does not match the signature or was altered"
    elif trust.tsa_root_pem:
        where = "by a trusted authority" if trusted else "by an authority not under --tsa-root"
    else:
        where = "(authority not checked: no --tsa-root)"
    report.check(
        intact and (trusted or not trust.tsa_root_pem),
        f"{label}: the signature was timestamped at {utc(moment)} {where}",
    )
    if not intact:
        return None
    return _Stamp(time=moment, latest=latest, stated=stated, trusted=trusted)


def _token_time(info: tsp.TSTInfo) -> tuple[datetime, str]:
    """The latest moment a token allows its data to have existed, and its time as stated.

    That moment is genTime plus the accuracy the authority states, plus one unit of genTime's
    last digit: a time given to the second, as OpenSSL gives it by default, is cut, not rounded.
    """
    accuracy = info["accuracy"].native or {}
    margin = timedelta(
        seconds=accuracy.get("seconds") or 0,
        milliseconds=accuracy.get("millis") or 0,
        microseconds=accuracy.get("micros") or 0,
    )
    written = bytes(info["gen_time"].contents).decode("ascii")  # 20261202041322[.25]Z
    fraction = written.partition(".")[2].rstrip("Z")
    gen_time: datetime = info["gen_time"].native
    stated = f"{gen_time:%Y-%m-%dT%H:%M:%S}" + (f".{fraction}" if fraction else "") + "Z"
    if margin:
        stated += f" ± {margin.total_seconds():g} s"
    return gen_time + margin + timedelta(seconds=10.0 ** -len(fraction)), stated


def check_chain(report: Report, evidence: Iterable[Evidence]) -> None:
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
