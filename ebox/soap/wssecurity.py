"""WS-Security: who sent a SOAP request, proven by its signature, and nothing else.

The accepted profile is what stock clients send once told to use SHA-256 and to sign the
Timestamp (zeep, WSS4J/CXF; node-soap as it is): one wsse:Security header holding one X.509
wsse:BinarySecurityToken, one wsu:Timestamp and one ds:Signature. The signature uses exclusive
C14N, RSA or ECDSA with SHA-256 or stronger, and references (URI="#id", SHA-256 or SHA-512
digests) that must cover the envelope's soap:Body and the Timestamp, and may cover the token; its
KeyInfo points at the token. A reference's transforms are exclusive C14N alone, or
enveloped-signature then exclusive C14N (node-soap's default). The enveloped-signature transform
removes the ds:Signature from the referenced content when it lies inside it; none of the elements
a reference may name (below) can contain the Signature, so it changes nothing. It is still safe if
that ever changed: our digests (step 4) never apply it, so the digest of an element holding the
Signature would not match and the request would be refused.

Signature wrapping is defeated by never letting anything but our own code decide which element a
reference means:

1. every Id-like attribute (Id, ID, id, in any namespace, xml:id included) in the whole document
   is collected, and a value used twice refuses the request;
2. each reference is resolved through that table; the element found must be, by object identity,
   the Envelope's one Body, the Timestamp of the Security header, or the token — anything else is
   refused, and Body and Timestamp must both be covered;
3. nothing else resolves a reference: no Id is registered anywhere (the parser collects none);
4. the digest of every referenced element is computed here (exclusive C14N of the very element
   objects above) and compared with the DigestValue of its reference; then the SignatureValue is
   verified over SignedInfo, which holds those DigestValues (ebox.soap.signature, which reads
   SignedInfo exactly as xmlsec did when it did this step). So the Body returned is bound to the
   signature by our own computation, and digested once.

Checks run cheapest first: the shape of the header, the algorithms, the Timestamp window, the Id
table and references, the certificate (an indexed query, or remembered for a few seconds: see
ebox.senders.directory), our digests, then the public-key operation, and last the replay check,
so that only verified requests mark anything as seen.

The Timestamp: Created within CLOCK_SKEW of our clock, either side; Expires later than now; its
lifetime (Expires - Created) at most the configured bound (EBOX_WSS_MAX_TIMESTAMP_MINUTES). So a
given request can be accepted only while now lies in
[Created - CLOCK_SKEW, min(Expires, Created + CLOCK_SKEW)], however long the lifetime it claims.

Replays are recognised by the signed content, not by the SignatureValue: the same bytes of
SignatureValue can be re-encoded (base64 line breaks), and an ECDSA signature (r, s) has a twin
(r, n - s) that verifies as well. The replay key is a hash of the Body and Timestamp digests
computed here, which an attacker cannot change without breaking the signature; the Timestamp
makes it unique per request. The key is recorded in the database (ebox.soap.services) in the
request's own transaction, and again after a refusal (ebox.soap.views), until the end of the
window above plus one second (whole seconds, as when Redis kept it): as long as the request
could be accepted. Redis plays no part: a Redis that lost its data, or is down, lets no replay
through (docs/decisions/0019).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree
from xmlsec import constants

from ebox.senders.directory import Signer, find_signer
from ebox.senders.models import Sender, SenderCertificate
from ebox.soap.faults import (
    CERTIFICATE_EXPIRED,
    CERTIFICATE_REVOKED,
    CERTIFICATE_UNKNOWN,
    REPLAY,
    SECURITY_HEADER_MISSING,
    SENDER_SUSPENDED,
    SIGNATURE_ALGORITHM_REFUSED,
    SIGNATURE_INVALID,
    TIMESTAMP_INVALID,
    XML_MALFORMED,
    SoapFault,
)
from ebox.soap.services import remember_request
from ebox.soap.signature import (
    SIGNATURE_METHODS,
    CheckedReference,
    SignatureMismatch,
    verify_signed_info,
)
from ebox.soap.xml import SOAP11_NS

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509_VALUE_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)
BASE64_ENCODING = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

CLOCK_SKEW = timedelta(minutes=5)

# Digest URI → hashlib's name of the same algorithm.
_DIGEST_METHODS = {
    constants.TransformSha256.href: "sha256",
    constants.TransformSha512.href: "sha512",
}
_EXC_C14N = constants.TransformExclC14N.href
_ENVELOPED = constants.TransformEnveloped.href
_REFERENCE_TRANSFORMS = ([_EXC_C14N], [_ENVELOPED, _EXC_C14N])
_ID_NAMES = frozenset({"Id", "ID", "id"})
_LOCAL_ID_URI = re.compile(r"#([A-Za-z_][A-Za-z0-9_.\-]*)")
_DATETIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")

_NOT_SIGNED_AS_REQUIRED = (
    "The signature must cover exactly the SOAP Body and the Timestamp (and optionally the "
    "security token), each referenced once by its Id (wsu:Id, or an Id, ID or id attribute)."
)


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


@dataclass(frozen=True)
class Authenticated:
    sender: Sender
    certificate: SenderCertificate
    body: etree._Element  # the envelope's single soap:Body element, proven covered by the signature
    replay_key: str  # recorded as seen until replay_expires_at
    replay_expires_at: datetime


@dataclass
class _Parts:
    body: etree._Element
    token: etree._Element
    timestamp: etree._Element
    signature: etree._Element
    signed_info: etree._Element


@dataclass
class _Reference:
    node: etree._Element  # the ds:Reference
    element: etree._Element
    id_attribute: str
    digest_method: str
    digest_value: bytes
    inclusive_prefixes: list[str]


def authenticate(
    envelope: etree._Element,
    *,
    now: datetime,
    max_timestamp_lifetime: timedelta,
) -> Authenticated:
    """Prove who signed envelope, or raise SoapFault. See the module docstring for the rules.

    now is an aware datetime; max_timestamp_lifetime the longest Expires - Created accepted
    (the setting wss_max_timestamp_minutes). The caller's database session is used to find the
    certificate and to record the request as seen: its transaction decides whether it was.
    """
    parts = _find_parts(envelope)
    signature_method = _check_algorithms(parts.signed_info)
    window_closes_at = _check_timestamp(parts.timestamp, now, max_timestamp_lifetime)
    ids = _collect_ids(envelope)
    references = _resolve_references(parts, ids)
    _check_key_info(parts, ids)
    signer = _registered_certificate(_token_certificate(parts.token), now)
    digests = [_check_digest(reference) for reference in references]
    _verify_signature(parts.signature, signature_method, references, digests, signer)
    covered = {id(r.element): digest for r, digest in zip(references, digests, strict=True)}
    replay_key = hashlib.sha256(covered[id(parts.timestamp)] + covered[id(parts.body)]).hexdigest()
    expires_at = now + timedelta(seconds=_replay_ttl(window_closes_at, now))
    if not remember_request(replay_key, expires_at=expires_at):
        raise SoapFault(REPLAY, "This signed request has already been received.")
    record = signer.certificate
    return Authenticated(
        sender=record.sender,
        certificate=record,
        body=parts.body,
        replay_key=replay_key,
        replay_expires_at=expires_at,
    )


def _find_parts(envelope: etree._Element) -> _Parts:
    if envelope.tag != _q(SOAP11_NS, "Envelope"):
        raise SoapFault(XML_MALFORMED, "The request is not a SOAP 1.1 Envelope.")
    bodies = envelope.findall(_q(SOAP11_NS, "Body"))
    if len(bodies) != 1:
        raise SoapFault(XML_MALFORMED, "The SOAP Envelope must contain exactly one Body.")
    headers = envelope.findall(_q(SOAP11_NS, "Header"))
    securities = headers[0].findall(_q(WSSE_NS, "Security")) if len(headers) == 1 else []
    if not securities:
        raise SoapFault(
            SECURITY_HEADER_MISSING, "The request has no WS-Security header (wsse:Security)."
        )
    if len(headers) > 1 or len(securities) > 1:
        raise SoapFault(
            SIGNATURE_INVALID, "The request must have exactly one wsse:Security header."
        )
    security = securities[0]
    token = _only_child(security, _q(WSSE_NS, "BinarySecurityToken"), "wsse:BinarySecurityToken")
    timestamp = _only_child(security, _q(WSU_NS, "Timestamp"), "wsu:Timestamp", TIMESTAMP_INVALID)
    signature = _only_child(security, _q(DS_NS, "Signature"), "ds:Signature")
    allowed = {token, timestamp, signature}
    if any(isinstance(c.tag, str) and c not in allowed for c in security):
        raise SoapFault(
            SIGNATURE_INVALID,
            "The wsse:Security header may contain only a BinarySecurityToken, a Timestamp "
            "and a Signature.",
        )
    expected = [_q(DS_NS, name) for name in ("SignedInfo", "SignatureValue", "KeyInfo")]
    if [c.tag for c in signature if isinstance(c.tag, str)] != expected:
        raise SoapFault(
            SIGNATURE_INVALID,
            "The ds:Signature must contain a SignedInfo, a SignatureValue and a KeyInfo, "
            "and nothing else.",
        )
    signed_info = _only_child(signature, _q(DS_NS, "SignedInfo"), "ds:SignedInfo")
    return _Parts(bodies[0], token, timestamp, signature, signed_info)


def _only_child(
    parent: etree._Element, tag: str, what: str, code: str = SIGNATURE_INVALID
) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        where = etree.QName(parent).localname
        raise SoapFault(code, f"The {where} element must contain exactly one {what}.")
    return found[0]


def _algorithm(parent: etree._Element, tag: str) -> str:
    node = _only_child(parent, _q(DS_NS, tag), f"ds:{tag}")
    return node.get("Algorithm") or ""


def _check_algorithms(signed_info: etree._Element) -> str:
    if _algorithm(signed_info, "CanonicalizationMethod") != _EXC_C14N:
        raise SoapFault(
            SIGNATURE_ALGORITHM_REFUSED,
            "The signature must use exclusive XML canonicalization (xml-exc-c14n#).",
        )
    method = _algorithm(signed_info, "SignatureMethod")
    if method not in SIGNATURE_METHODS:
        raise SoapFault(
            SIGNATURE_ALGORITHM_REFUSED,
            "The signature algorithm is refused; use RSA or ECDSA with SHA-256, SHA-384 or "
            "SHA-512 (SHA-1, DSA and HMAC are not accepted).",
        )
    for reference in signed_info.iterfind(_q(DS_NS, "Reference")):
        if _algorithm(reference, "DigestMethod") not in _DIGEST_METHODS:
            raise SoapFault(
                SIGNATURE_ALGORITHM_REFUSED,
                "The digest algorithm is refused; use SHA-256 or SHA-512 (SHA-1 is not accepted).",
            )
    return method


def _replay_ttl(window_closes_at: datetime, now: datetime) -> int:
    """Seconds a request accepted at now must stay remembered: past the end of its window."""
    return math.ceil((window_closes_at - now).total_seconds()) + 1


def _check_timestamp(timestamp: etree._Element, now: datetime, max_lifetime: timedelta) -> datetime:
    """Check the Timestamp against now; return when the request's acceptance window closes."""
    created = _timestamp_field(timestamp, "Created")
    expires = _timestamp_field(timestamp, "Expires")
    if created > now + CLOCK_SKEW:
        raise SoapFault(TIMESTAMP_INVALID, "The Timestamp is created in the future.")
    if created < now - CLOCK_SKEW:
        raise SoapFault(
            TIMESTAMP_INVALID,
            f"The Timestamp was created more than {_minutes(CLOCK_SKEW)} minutes ago.",
        )
    if expires <= created or expires - created > max_lifetime:
        raise SoapFault(
            TIMESTAMP_INVALID,
            f"The Timestamp must expire after its creation, within {_minutes(max_lifetime)} "
            "minutes.",
        )
    if expires <= now:
        raise SoapFault(TIMESTAMP_INVALID, "The Timestamp has expired.")
    return min(expires, created + CLOCK_SKEW)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g}"


def _timestamp_field(timestamp: etree._Element, name: str) -> datetime:
    text = _only_child(timestamp, _q(WSU_NS, name), f"wsu:{name}", TIMESTAMP_INVALID).text or ""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise SoapFault(
            TIMESTAMP_INVALID,
            f"The Timestamp's {name} must be a date and time with a time zone, "
            "like 2025-01-31T12:00:00Z.",
        )
    seconds, fraction, zone = match.groups()
    micro = f".{(fraction or '0')[:6]:0<6}"
    try:
        return datetime.fromisoformat(seconds + micro + zone.replace("Z", "+00:00"))
    except ValueError:
        raise SoapFault(TIMESTAMP_INVALID, f"The Timestamp's {name} is not a valid date.") from None


def _collect_ids(envelope: etree._Element) -> dict[str, tuple[etree._Element, str]]:
    """Every Id-like attribute value of the document, with its element and attribute name."""
    ids: dict[str, tuple[etree._Element, str]] = {}
    for element in envelope.iter(etree.Element):
        for name, value in element.attrib.items():
            if etree.QName(name).localname not in _ID_NAMES:
                continue
            if value in ids:
                raise SoapFault(
                    SIGNATURE_INVALID, "The request uses the same Id value more than once."
                )
            ids[value] = (element, name)
    return ids


def _resolve_references(
    parts: _Parts, ids: dict[str, tuple[etree._Element, str]]
) -> list[_Reference]:
    references = [
        _resolve_reference(node, ids) for node in parts.signed_info.iterfind(_q(DS_NS, "Reference"))
    ]
    elements = [r.element for r in references]
    allowed = (parts.body, parts.timestamp, parts.token)
    if (
        any(not any(e is a for a in allowed) for e in elements)
        or len({id(e) for e in elements}) != len(elements)
        or not any(e is parts.body for e in elements)
        or not any(e is parts.timestamp for e in elements)
    ):
        raise SoapFault(SIGNATURE_INVALID, _NOT_SIGNED_AS_REQUIRED)
    return references


def _resolve_reference(
    node: etree._Element, ids: dict[str, tuple[etree._Element, str]]
) -> _Reference:
    match = _LOCAL_ID_URI.fullmatch(node.get("URI") or "")
    if match is None or match.group(1) not in ids:
        raise SoapFault(SIGNATURE_INVALID, _NOT_SIGNED_AS_REQUIRED)
    element, attribute = ids[match.group(1)]
    transforms = node.findall(f"{_q(DS_NS, 'Transforms')}/{_q(DS_NS, 'Transform')}")
    children = [c.tag for c in node if isinstance(c.tag, str)]
    expected = [_q(DS_NS, n) for n in ("Transforms", "DigestMethod", "DigestValue")]
    algorithms = [t.get("Algorithm") for t in transforms]
    if algorithms not in _REFERENCE_TRANSFORMS or children != expected:
        raise SoapFault(
            SIGNATURE_ALGORITHM_REFUSED,
            "Each signature reference must use exclusive XML canonicalization (xml-exc-c14n#) "
            "as its last transform, preceded by nothing or by enveloped-signature.",
        )
    return _Reference(
        node=node,
        element=element,
        id_attribute=attribute,
        digest_method=_algorithm(node, "DigestMethod"),
        digest_value=_base64(_only_child(node, _q(DS_NS, "DigestValue"), "ds:DigestValue").text),
        inclusive_prefixes=_inclusive_prefixes(transforms[-1]),
    )


def _inclusive_prefixes(transform: etree._Element) -> list[str]:
    found = transform.findall(_q(EXC_C14N_NS, "InclusiveNamespaces"))
    return (found[0].get("PrefixList") or "").split() if found else []


def _base64(text: str | None) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SoapFault(SIGNATURE_INVALID, "The signature contains invalid base64 data.") from None


def _check_key_info(parts: _Parts, ids: dict[str, tuple[etree._Element, str]]) -> None:
    path = "/".join(
        (_q(DS_NS, "KeyInfo"), _q(WSSE_NS, "SecurityTokenReference"), _q(WSSE_NS, "Reference"))
    )
    pointers = parts.signature.findall(path)
    match = _LOCAL_ID_URI.fullmatch(pointers[0].get("URI") or "") if len(pointers) == 1 else None
    if match is None or ids.get(match.group(1), (None, ""))[0] is not parts.token:
        raise SoapFault(
            SIGNATURE_INVALID,
            "The signature's KeyInfo must reference the BinarySecurityToken of the request.",
        )


def _token_certificate(token: etree._Element) -> bytes:
    if token.get("ValueType") != X509_VALUE_TYPE or token.get("EncodingType") not in (
        None,
        BASE64_ENCODING,
    ):
        raise SoapFault(
            SIGNATURE_INVALID, "The BinarySecurityToken must be a base64 X.509 v3 certificate."
        )
    return _base64(token.text)


def _registered_certificate(der: bytes, now: datetime) -> Signer:
    try:
        signer = find_signer(der, now=now)
    except ValueError:
        raise SoapFault(
            SIGNATURE_INVALID, "The BinarySecurityToken is not a valid X.509 certificate."
        ) from None
    return check_may_sign(signer, now)


def check_may_sign(signer: Signer | None, now: datetime) -> Signer:
    """The signer, if its certificate may sign now for an active sender; else the Fault saying
    why. The REST API's tokens answer to the same rules (ebox.api.auth)."""
    if signer is None:
        raise SoapFault(
            CERTIFICATE_UNKNOWN, "The signing certificate is not registered to any sender."
        )
    record = signer.certificate
    if record.revoked_at is not None:
        raise SoapFault(CERTIFICATE_REVOKED, "The signing certificate has been revoked.")
    if not (
        record.not_before <= now <= record.not_after
        and signer.valid_from <= now <= signer.valid_until
    ):
        raise SoapFault(CERTIFICATE_EXPIRED, "The signing certificate is expired or not yet valid.")
    if not record.sender.is_active:
        raise SoapFault(SENDER_SUSPENDED, "The sender is suspended.")
    return signer


def _check_digest(reference: _Reference) -> bytes:
    canonical = etree.tostring(
        reference.element,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=reference.inclusive_prefixes or None,
    )
    computed = hashlib.new(_DIGEST_METHODS[reference.digest_method], canonical).digest()
    if computed != reference.digest_value:
        raise SoapFault(
            SIGNATURE_INVALID, "The signature does not match the signed content of the request."
        )
    return computed


def _verify_signature(
    signature: etree._Element,
    method: str,
    references: list[_Reference],
    digests: list[bytes],
    signer: Signer,
) -> None:
    checked = [
        CheckedReference(
            node=reference.node,
            element=reference.element,
            hash_name=_DIGEST_METHODS[reference.digest_method],
            digest=digest,
            prefixes=reference.inclusive_prefixes,
        )
        for reference, digest in zip(references, digests, strict=True)
    ]
    try:
        verify_signed_info(signature, method, checked, signer.public_key)
    except SignatureMismatch:
        raise SoapFault(
            SIGNATURE_INVALID, "The signature does not verify with the request's certificate."
        ) from None
