"""Evidence documents: what happened to a registered message, sealed by the platform.

Each evidence is a small XML document in our namespace, its events named as in ETSI EN 319 522
(SubmissionAcceptance, ContentConsignment, ContentHandover, and ContentHandoverFailure when the
document expired unopened). Message names the document by its platform id, the sender's ticket
and sequence, its submission time, optionally its Title and FileName, and the SHA-256 of its
content. An enveloped XML signature (RSA-SHA256, exclusive C14N, the seal certificate in
KeyInfo) covers the whole document, so any verifier, `xmlsec1 --verify` among them, can check it
without our code. Each evidence carries the SHA-256 of the one before it for the same message:
removing or reordering one breaks the chain.

A ContentHandover may name a Representative (schema 1.1): the person who opened the document on
the recipient's behalf, under a mandate eBox checked at that moment. The recipient stays the
addressee; the login sealed is then the representative's own, under Representative, not under
Recipient. An opening by the recipient has no Representative element at all.

A message with attachments (schema 1.2) has one AttachmentDigest per attachment after its
DocumentDigest, in the sender's order, naming its Position and FileName: the evidence covers
every document of the message. A message without attachments is sealed exactly as before.

With a timestamp authority configured, the signature itself is timestamped (RFC 3161): the
token's message imprint is SHA-256 over the signature value, that is the bytes of the base64-
decoded ds:SignatureValue text (whitespace ignored). The DER token, base64, sits in
ds:Signature/ds:Object/ev:SignatureTimeStamp. Inside ds:Signature, the enveloped-signature
transform leaves it out of what the signature covers, so adding it after signing keeps the
signature valid; the token is protected by the authority's own signature instead. A verifier
checks it with `openssl ts -verify -data SIGNATURE_VALUE_BYTES -in TOKEN -token_in -CAfile ...`.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import xmlsec
from lxml import etree
from xmlsec import constants

from ebox.db_types import utcnow
from ebox.evidence.seal import Seal
from ebox.evidence.timestamp import request_timestamp

NS = "urn:ebox:ns:Evidence:v1"
DS = "http://www.w3.org/2000/09/xmldsig#"
SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"
EVENT_URI = "urn:ebox:evidence:event:"

SUBMISSION_ACCEPTANCE = "SubmissionAcceptance"
CONTENT_CONSIGNMENT = "ContentConsignment"
CONTENT_HANDOVER = "ContentHandover"
CONTENT_HANDOVER_FAILURE = "ContentHandoverFailure"
EVENTS = (SUBMISSION_ACCEPTANCE, CONTENT_CONSIGNMENT, CONTENT_HANDOVER, CONTENT_HANDOVER_FAILURE)
NAMESPACES = {"ev": NS, "ds": DS}

# How much later than its sealing an event may be stated, for the clock's sake. Both times are
# read from the platform's clock, the event first: microseconds before for an opening, earlier
# still for a publication or an expiry. They can only come out inverted when the clock is
# stepped back in between, which time synchronisation does only when the clock is already off
# by more (ntpd from 128 ms, systemd-timesyncd from 0.4 s, chrony usually from 1 s). A second
# absorbs such a step yet is far below anything the evidence is read for (expiries are days).
CLOCK_SKEW = timedelta(seconds=1)

SCHEMA_FILE = "Evidence-v1.xsd"
SCHEMA_PATH = Path(__file__).resolve().parent / "contract" / SCHEMA_FILE
_schemas = threading.local()

# Evidence read back may come from anywhere: no entities, no network.
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@dataclass(frozen=True)
class RecipientAuthentication:
    """How the person who opened the document had proved to be the recipient: the login, as
    the identity provider stated it in its signed assertion."""

    identity_provider: str
    authn_context: str
    authenticated_at: datetime | None
    assertion_id: str


@dataclass(frozen=True)
class Representative:
    """Who opened a registered document on the recipient's behalf, and under which mandate.

    national_number and name identify the person, as their own login and the national register
    state them; mandate_id is the mandate's reference at eBox; mandate_scope what it allowed
    (as eBox names it) and mandate_valid_until its end, when it has one. Whether the mandate was
    valid and in scope is for the caller to have checked: the evidence states that eBox did.
    """

    national_number: str
    name: str
    mandate_id: str
    mandate_scope: str | None = None
    mandate_valid_until: datetime | None = None


@dataclass(frozen=True)
class AttachmentDigest:
    """One attachment of the message, as its evidence names it (schema 1.2)."""

    position: int
    file_name: str | None
    sha256: str


@dataclass(frozen=True)
class EvidenceFacts:
    """Everything an evidence states; nothing about the document's content but its digest."""

    evidence_id: str
    event: str
    event_time: datetime
    issuer_name: str
    issuer_url: str
    sender_enterprise_number: str
    sender_name: str
    sender_application: str
    recipient_national_number: str
    platform_message_id: str
    sender_ticket: str
    sender_sequence: int | None
    submission_time: datetime
    document_sha256: str
    previous_evidence_sha256: str | None
    reason: str | None = None
    document_title: str | None = None
    document_file_name: str | None = None
    recipient_authentication: RecipientAuthentication | None = None
    # The certificate the sender's request was signed with (SubmissionAcceptance).
    sender_certificate_sha256: str | None = None
    # Until when the document is (or was) available to the recipient.
    available_until: datetime | None = None
    # When the platform sealed this evidence; it may come after the event (a non-retrieval is
    # sealed by the purge that follows the expiry), never before it (beyond CLOCK_SKEW).
    sealing_time: datetime | None = None
    # A ContentHandover by someone else than the recipient, and that person's own login
    # (recipient_authentication is then None: the recipient did not log in).
    representative: Representative | None = None
    representative_authentication: RecipientAuthentication | None = None
    # The message's further documents, after the main one (none: no element at all).
    attachments: tuple[AttachmentDigest, ...] = ()


class EventAfterSealing(ValueError):
    """The evidence would state an event later than its own sealing: a fact not yet true."""


def build_and_seal(
    facts: EvidenceFacts,
    seal: Seal,
    *,
    tsa_url: str | None = None,
    tsa_root_pem: bytes | None = None,
) -> bytes:
    """The evidence as signed XML bytes (UTF-8, with an XML declaration).

    With tsa_url, the signature value is timestamped by that authority; when it fails,
    TimestampError propagates: no evidence goes out without the timestamp it should carry.
    EventAfterSealing is raised before anything is signed or asked of the authority.
    """
    if facts.event not in EVENTS:
        raise ValueError(f"unknown evidence event {facts.event!r}")
    _refuse_event_after_sealing(facts, now=utcnow())
    _refuse_misplaced_representative(facts)
    root = etree.Element(f"{{{NS}}}Evidence", nsmap={"ev": NS})
    _add(root, "EvidenceId", facts.evidence_id)
    _add(root, "EventType", EVENT_URI + facts.event)
    _add(root, "EventTime", _utc(facts.event_time))
    if facts.sealing_time is not None:
        _add(root, "SealingTime", _utc(facts.sealing_time))
    issuer = _add(root, "Issuer")
    _add(issuer, "Name", facts.issuer_name)
    _add(issuer, "Url", facts.issuer_url)
    sender = _add(root, "Sender")
    _add(sender, "EnterpriseNumber", facts.sender_enterprise_number)
    _add(sender, "Name", facts.sender_name)
    _add(sender, "Application", facts.sender_application)
    if facts.sender_certificate_sha256 is not None:
        _add(sender, "CertificateDigest", facts.sender_certificate_sha256).set(
            "Algorithm", SHA256_URI
        )
    recipient = _add(root, "Recipient")
    _add(recipient, "NationalNumber", facts.recipient_national_number)
    if facts.recipient_authentication is not None:
        _add_authentication(recipient, facts.recipient_authentication)
    if facts.representative is not None:
        _add_representative(root, facts.representative, facts.representative_authentication)
    message = _add(root, "Message")
    _add(message, "PlatformMessageId", facts.platform_message_id)
    _add(message, "SenderTicket", facts.sender_ticket)
    if facts.sender_sequence is not None:
        _add(message, "SenderSequence", str(facts.sender_sequence))
    _add(message, "SubmissionTime", _utc(facts.submission_time))
    if facts.document_title is not None:
        _add(message, "Title", facts.document_title)
    if facts.document_file_name is not None:
        _add(message, "FileName", facts.document_file_name)
    _add(message, "DocumentDigest", facts.document_sha256).set("Algorithm", SHA256_URI)
    for attachment in facts.attachments:
        _add_attachment(message, attachment)
    if facts.available_until is not None:
        _add(message, "AvailableUntil", _utc(facts.available_until))
    if facts.previous_evidence_sha256 is not None:
        previous = _add(root, "PreviousEvidenceDigest", facts.previous_evidence_sha256)
        previous.set("Algorithm", SHA256_URI)
    if facts.reason:
        _add(root, "Reason", facts.reason)
    signature = _sign(root, seal)
    problem = schema_problem(root)
    if problem is not None:  # never seal what a verifier would refuse
        raise ValueError(f"evidence does not follow {SCHEMA_FILE}: {problem}")
    if tsa_url is not None:
        token = request_timestamp(
            tsa_url, _signature_value(signature), trusted_root_pem=tsa_root_pem
        )
        _add_timestamp(signature, token)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _refuse_event_after_sealing(facts: EvidenceFacts, *, now: datetime) -> None:
    """Raise EventAfterSealing when the event is stated later than the sealing: now, or the
    SealingTime the evidence states if that is earlier."""
    sealed_at = min(facts.sealing_time or now, now)
    if facts.event_time > sealed_at + CLOCK_SKEW:
        raise EventAfterSealing(
            f"{facts.event} evidence not sealed: its EventTime {_utc(facts.event_time)} is after "
            f"its sealing time {_utc(sealed_at)} (by {facts.event_time - sealed_at}; at most "
            f"{CLOCK_SKEW.total_seconds():g} s of clock difference is allowed)"
        )


def _refuse_misplaced_representative(facts: EvidenceFacts) -> None:
    """A representative only opens: in a ContentHandover, someone other than the recipient,
    and the login sealed is theirs (the recipient's own login would state a second opener)."""
    if facts.representative is None:
        if facts.representative_authentication is not None:
            raise ValueError("a representative's login without a representative")
        return
    if facts.event != CONTENT_HANDOVER:
        raise ValueError(f"only a {CONTENT_HANDOVER} names a representative, not {facts.event}")
    if facts.representative.national_number == facts.recipient_national_number:
        raise ValueError("the recipient is not their own representative")
    if facts.recipient_authentication is not None:
        raise ValueError("an opening by a representative states their login, not the recipient's")


def digest(evidence_xml: bytes) -> str:
    """What the next evidence of the same message records as its predecessor."""
    return hashlib.sha256(evidence_xml).hexdigest()


class EvidenceFormatError(ValueError):
    """Not an evidence document of this format: a fact missing or unreadable."""


def read_facts(evidence_xml: bytes) -> EvidenceFacts:
    """What an evidence states: the inverse of build_and_seal. Its signature is not checked
    here (ebox.evidence.verify does that)."""
    try:
        root = etree.fromstring(evidence_xml, parser=_SAFE_PARSER)
    except etree.XMLSyntaxError as error:
        raise EvidenceFormatError(f"not well-formed XML: {error}") from None
    if root.tag != f"{{{NS}}}Evidence":
        raise EvidenceFormatError("not an evidence document")
    event_type = _required(root, "EventType")
    event = event_type.removeprefix(EVENT_URI)
    if event == event_type or event not in EVENTS:
        raise EvidenceFormatError(f"unknown evidence event {event_type!r}")
    sequence = _optional(root, "Message/SenderSequence")
    login = root.find("ev:Recipient/ev:Authentication", NAMESPACES)
    representative = root.find("ev:Representative", NAMESPACES)
    if representative is not None and event != CONTENT_HANDOVER:
        raise EvidenceFormatError(f"a {event} evidence names a representative")
    return EvidenceFacts(
        evidence_id=_required(root, "EvidenceId"),
        event=event,
        event_time=_moment(_required(root, "EventTime")),
        issuer_name=_required(root, "Issuer/Name"),
        issuer_url=_required(root, "Issuer/Url"),
        sender_enterprise_number=_required(root, "Sender/EnterpriseNumber"),
        sender_name=_required(root, "Sender/Name"),
        sender_application=_required(root, "Sender/Application"),
        recipient_national_number=_required(root, "Recipient/NationalNumber"),
        platform_message_id=_required(root, "Message/PlatformMessageId"),
        sender_ticket=_required(root, "Message/SenderTicket"),
        sender_sequence=int(sequence) if sequence is not None else None,
        submission_time=_moment(_required(root, "Message/SubmissionTime")),
        document_sha256=_required(root, "Message/DocumentDigest"),
        previous_evidence_sha256=_optional(root, "PreviousEvidenceDigest"),
        reason=_optional(root, "Reason"),
        document_title=_optional(root, "Message/Title"),
        document_file_name=_optional(root, "Message/FileName"),
        recipient_authentication=_read_authentication(login),
        sender_certificate_sha256=_optional(root, "Sender/CertificateDigest"),
        available_until=_optional_moment(_optional(root, "Message/AvailableUntil")),
        sealing_time=_optional_moment(_optional(root, "SealingTime")),
        representative=_read_representative(representative),
        representative_authentication=None
        if representative is None
        else _read_authentication(representative.find("ev:Authentication", NAMESPACES)),
        attachments=_read_attachments(root),
    )


def _read_attachments(root: etree._Element) -> tuple[AttachmentDigest, ...]:
    nodes = root.iterfind("ev:Message/ev:AttachmentDigest", NAMESPACES)
    try:
        return tuple(
            AttachmentDigest(int(node.get("Position", "")), node.get("FileName"), node.text or "")
            for node in nodes
        )
    except ValueError:
        raise EvidenceFormatError("an AttachmentDigest has no Position") from None


def _read_authentication(login: etree._Element | None) -> RecipientAuthentication | None:
    if login is None:
        return None
    return RecipientAuthentication(
        identity_provider=_optional(login, "IdentityProvider") or "",
        authn_context=_optional(login, "AuthnContextClassRef") or "",
        authenticated_at=_optional_moment(_optional(login, "AuthenticationTime")),
        assertion_id=_optional(login, "AssertionId") or "",
    )


def _read_representative(node: etree._Element | None) -> Representative | None:
    if node is None:
        return None
    return Representative(
        national_number=_required(node, "NationalNumber", "Representative/"),
        name=_required(node, "Name", "Representative/"),
        mandate_id=_required(node, "Mandate/MandateId", "Representative/"),
        mandate_scope=_optional(node, "Mandate/Scope"),
        mandate_valid_until=_optional_moment(_optional(node, "Mandate/ValidUntil")),
    )


def _required(root: etree._Element, path: str, within: str = "") -> str:
    value = _optional(root, path)
    if value is None:
        raise EvidenceFormatError(f"the evidence has no {within}{path}")
    return value


def _optional(root: etree._Element, path: str) -> str | None:
    steps = "/".join(f"ev:{step}" for step in path.split("/"))
    value = root.findtext(steps, namespaces=NAMESPACES)
    return value if value else None


def _optional_moment(text: str | None) -> datetime | None:
    return None if text is None else _moment(text)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise EvidenceFormatError(f"the evidence time {text!r} is not a time") from None
    if moment.tzinfo is None:
        raise EvidenceFormatError(f"the evidence time {text!r} has no time zone")
    return moment.astimezone(UTC)


def schema_problem(root: etree._Element) -> str | None:
    """Why the evidence does not follow the Evidence schema, or None when it does."""
    schema = _schema()
    if schema.validate(root):
        return None
    error = schema.error_log.last_error
    return error.message if error is not None else "invalid"


def _schema() -> etree.XMLSchema:
    """One validator per thread: a validator keeps its error log."""
    loaded: etree.XMLSchema | None = getattr(_schemas, "evidence", None)
    if loaded is None:
        loaded = etree.XMLSchema(etree.parse(str(SCHEMA_PATH), _SAFE_PARSER))
        _schemas.evidence = loaded
    return loaded


def signature_timestamp(evidence_xml: bytes) -> tuple[bytes, bytes] | None:
    """The DER timestamp token of an evidence and the signature value bytes it covers, or None
    when the evidence carries no timestamp. Checking the token is the verifier's job."""
    root = etree.fromstring(evidence_xml, parser=_SAFE_PARSER)
    signature = root.find("ds:Signature", NAMESPACES)
    if signature is None:
        return None
    stamp = signature.findtext("ds:Object/ev:SignatureTimeStamp", namespaces=NAMESPACES)
    if stamp is None:
        return None
    return base64.b64decode(stamp), _signature_value(signature)


def _sign(root: etree._Element, seal: Seal) -> etree._Element:
    signature = xmlsec.template.create(
        root, constants.TransformExclC14N, constants.TransformRsaSha256, ns="ds"
    )
    root.append(signature)
    reference = xmlsec.template.add_reference(signature, constants.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, constants.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_x509_data(key_info)
    context = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(seal.key_pem, constants.KeyDataFormatPem)
    key.load_cert_from_memory(seal.cert_pem, constants.KeyDataFormatCertPem)
    # The seal certificate first, then its intermediate CAs: a verifier that trusts the root
    # (xmlsec1 --trusted-pem) finds the whole path in the evidence.
    for intermediate in seal.intermediate_pems:
        key.load_cert_from_memory(intermediate, constants.KeyDataFormatCertPem)
    context.key = key
    context.sign(signature)
    return signature


def _signature_value(signature: etree._Element) -> bytes:
    """What the signature timestamp covers: the raw signature value (xmlsec wraps its base64)."""
    return base64.b64decode(signature.findtext("ds:SignatureValue", "", NAMESPACES))


def _add_timestamp(signature: etree._Element, token: bytes) -> None:
    holder = etree.SubElement(signature, f"{{{DS}}}Object")
    etree.SubElement(holder, f"{{{NS}}}SignatureTimeStamp").text = base64.b64encode(token).decode()


def _add_representative(
    root: etree._Element, person: Representative, login: RecipientAuthentication | None
) -> None:
    node = _add(root, "Representative")
    _add(node, "NationalNumber", person.national_number)
    _add(node, "Name", person.name)
    if login is not None:
        _add_authentication(node, login)
    mandate = _add(node, "Mandate")
    _add(mandate, "MandateId", person.mandate_id)
    if person.mandate_scope:
        _add(mandate, "Scope", person.mandate_scope)
    if person.mandate_valid_until is not None:
        _add(mandate, "ValidUntil", _utc(person.mandate_valid_until))


def _add_attachment(message: etree._Element, attachment: AttachmentDigest) -> None:
    node = _add(message, "AttachmentDigest", attachment.sha256)
    node.set("Algorithm", SHA256_URI)
    node.set("Position", str(attachment.position))
    if attachment.file_name:
        node.set("FileName", attachment.file_name)


def _add_authentication(parent: etree._Element, login: RecipientAuthentication) -> None:
    node = _add(parent, "Authentication")
    for name, value in (
        ("IdentityProvider", login.identity_provider),
        ("AuthnContextClassRef", login.authn_context),
        ("AuthenticationTime", _utc(login.authenticated_at) if login.authenticated_at else ""),
        ("AssertionId", login.assertion_id),
    ):
        if value:
            _add(node, name, value)


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
