"""Building WS-Security signed SOAP envelopes for tests, the honest way and the hostile ways.

Signing goes through python-xmlsec templates (exclusive C14N, RSA or ECDSA), so that a test can
change any part of a correctly signed request afterwards and see it refused.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.senders.models import Sender, SenderCertificate
from ebox.soap.wssecurity import (
    BASE64_ENCODING,
    DS_NS,
    WSSE_NS,
    WSU_NS,
    X509_VALUE_TYPE,
)
from ebox.soap.xml import SOAP11_NS
from tests.factories import create_sender

REDIS_URL = "redis://127.0.0.1:6379/0"
PAYLOAD_NS = "urn:example:ebox-test"
WSU_ID = f"{{{WSU_NS}}}Id"


@dataclass(frozen=True)
class Identity:
    """A signing key with its self-signed certificate."""

    key_pem: bytes
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def make_identity(
    kind: str = "rsa",
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    name: str = "Test Institution Back Office",
) -> Identity:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Identity(key_pem=key_pem, certificate=certificate)


def register(
    identity: Identity,
    sender: Sender | None = None,
    *,
    revoked: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> SenderCertificate:
    """Record identity's certificate as one of sender's (a new sender by default)."""
    sender = sender or create_sender()
    record = SenderCertificate(
        sender_id=sender.id,
        fingerprint_sha256=hashlib.sha256(identity.cert_der).hexdigest(),
        pem=identity.cert_pem.decode(),
        subject=identity.certificate.subject.rfc4514_string(),
        not_before=not_before or identity.certificate.not_valid_before_utc,
        not_after=not_after or identity.certificate.not_valid_after_utc,
        revoked_at=utcnow() if revoked else None,
    )
    db.session.add(record)
    db.session.commit()
    return record


def q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def make_envelope(text: str = "Hello", *, with_security: bool = True) -> etree._Element:
    """An unsigned envelope with a small payload, and an empty Security header."""
    nsmap = {"soap": SOAP11_NS, "wsse": WSSE_NS, "wsu": WSU_NS}
    envelope = etree.Element(q(SOAP11_NS, "Envelope"), nsmap=nsmap)
    header = etree.SubElement(envelope, q(SOAP11_NS, "Header"))
    if with_security:
        etree.SubElement(header, q(WSSE_NS, "Security"))
    body = etree.SubElement(envelope, q(SOAP11_NS, "Body"))
    request = etree.SubElement(body, q(PAYLOAD_NS, "ping"), nsmap={"t": PAYLOAD_NS})
    etree.SubElement(request, q(PAYLOAD_NS, "text")).text = text
    return envelope


def security_of(envelope: etree._Element) -> etree._Element:
    return envelope.find(f"{q(SOAP11_NS, 'Header')}/{q(WSSE_NS, 'Security')}")


def body_of(envelope: etree._Element) -> etree._Element:
    return envelope.find(q(SOAP11_NS, "Body"))


def xsd_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_timestamp(
    envelope: etree._Element,
    *,
    created: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
) -> etree._Element:
    created = created or utcnow()
    timestamp = etree.SubElement(security_of(envelope), q(WSU_NS, "Timestamp"))
    etree.SubElement(timestamp, q(WSU_NS, "Created")).text = xsd_datetime(created)
    etree.SubElement(timestamp, q(WSU_NS, "Expires")).text = xsd_datetime(created + lifetime)
    return timestamp


def ensure_id(element: etree._Element, attribute: str = WSU_ID) -> str:
    """The element's Id, made in attribute (a Clark name: wsu:Id by default) if it has none."""
    if id_attribute_of(element) is None:
        element.set(attribute, f"id-{uuid.uuid4()}")
    return str(element.get(str(id_attribute_of(element))))


def id_attribute_of(element: etree._Element) -> str | None:
    """The name of the element's Id-like attribute (Id, ID or id in any namespace), if any."""
    names = [n for n in element.attrib if etree.QName(n).localname in ("Id", "ID", "id")]
    return str(names[0]) if names else None


def sign(
    envelope: etree._Element,
    identity: Identity,
    *,
    covers: tuple[str, ...] = ("body", "timestamp"),
    extra_targets: tuple[etree._Element, ...] = (),
    signature_method: object = None,
    digest_method: object = None,
    with_timestamp: bool = True,
    created: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    timestamp_texts: tuple[str, str] | None = None,
    transforms: tuple[object, ...] = (xmlsec.Transform.EXCL_C14N,),
    id_attribute: str = WSU_ID,
) -> etree._Element:
    """Sign envelope as a back office would: token, Timestamp, Signature over Body and Timestamp.

    covers names what the signature references ("body", "timestamp", "token"); extra_targets
    adds any other elements; timestamp_texts overrides the Created and Expires texts;
    transforms are each reference's; id_attribute names the Id given to the signed Body and
    Timestamp (the token's is always wsu:Id).
    """
    security = security_of(envelope)
    timestamp = None
    if with_timestamp:
        timestamp = add_timestamp(envelope, created=created, lifetime=lifetime)
        if timestamp_texts:
            timestamp[0].text, timestamp[1].text = timestamp_texts
    token = etree.Element(
        q(WSSE_NS, "BinarySecurityToken"),
        {"ValueType": X509_VALUE_TYPE, "EncodingType": BASE64_ENCODING},
    )
    token.text = base64.b64encode(identity.cert_der).decode()
    ensure_id(token)
    security.insert(0, token)

    if signature_method is None:
        is_rsa = isinstance(identity.certificate.public_key(), rsa.RSAPublicKey)
        signature_method = xmlsec.Transform.RSA_SHA256 if is_rsa else xmlsec.Transform.ECDSA_SHA256
    signature = xmlsec.template.create(envelope, xmlsec.Transform.EXCL_C14N, signature_method)
    security.insert(1, signature)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(identity.key_pem, xmlsec.KeyFormat.PEM, None)
    named = {"body": body_of(envelope), "timestamp": timestamp, "token": token}
    targets = [named[name] for name in covers if named[name] is not None] + list(extra_targets)
    for target in targets:
        attribute = WSU_ID if target is token else id_attribute
        reference = xmlsec.template.add_reference(
            signature,
            digest_method or xmlsec.Transform.SHA256,
            uri="#" + ensure_id(target, attribute),
        )
        for transform in transforms:
            xmlsec.template.add_transform(reference, transform)
        name = etree.QName(str(id_attribute_of(target)))
        context.register_id(target, name.localname, name.namespace)
    key_info = xmlsec.template.ensure_key_info(signature)
    context.sign(signature)
    pointer = etree.SubElement(key_info, q(WSSE_NS, "SecurityTokenReference"))
    etree.SubElement(
        pointer,
        q(WSSE_NS, "Reference"),
        {"URI": "#" + ensure_id(token), "ValueType": X509_VALUE_TYPE},
    )
    return envelope


def signed_request(identity: Identity, text: str = "Hello", **options: object) -> bytes:
    return serialize(sign(make_envelope(text), identity, **options))  # type: ignore[arg-type]


def serialize(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def signature_of(envelope: etree._Element) -> etree._Element:
    return security_of(envelope).find(q(DS_NS, "Signature"))


class SignedTimestamp:
    """A zeep WS-Security step that adds a wsu:Timestamp; placed before BinarySignature, the
    signer finds it and signs it along with the Body."""

    def __init__(self, lifetime: timedelta = timedelta(minutes=5)) -> None:
        self.lifetime = lifetime

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> tuple[object, object]:
        from zeep.wsse.utils import WSU, get_security_header

        created = utcnow()
        get_security_header(envelope).append(
            WSU.Timestamp(
                WSU.Created(xsd_datetime(created)),
                WSU.Expires(xsd_datetime(created + self.lifetime)),
            )
        )
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        return envelope
