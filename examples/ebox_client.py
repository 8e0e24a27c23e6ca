"""A zeep client for the eBox services (EboxMessage v1, RegisteredMail v1), signing as they
require.

Every request carries a wsse:Security header with the back office's X.509 certificate as a
BinarySecurityToken, a wsu:Timestamp and an RSA-SHA256 (or ECDSA-SHA256) signature, with
exclusive canonicalisation and SHA-256 digests, over both the soap:Body and the Timestamp.

zeep's own BinarySignature signs a Timestamp when one is already in the header but never adds
one, and defaults to SHA-1; TimestampedSignature below adds the Timestamp first and fixes the
algorithms. eBox does not sign its responses (TLS protects them), so nothing is verified on
the way back.

Usage:

    client = make_client("https://ebox.example/soap/EboxMessage/v1?wsdl", key_pem, cert_pem)
    result = publish_pdf(client, recipient="85073003328", message_type="TAX", title="...",
                         pdf=Path("letter.pdf").read_bytes(), file_name="letter.pdf",
                         ticket="TAX-2026-000123")
    print(result.EboxMessageId)

Registered mail: the same with a client made from /soap/RegisteredMail/v1?wsdl, calling
send_registered_pdf() and later save_proof_of_delivery(). From the command line:
publish_example.py --registered, then proof_example.py.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import zeep
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from xmlsec import constants
from zeep.transports import Transport
from zeep.wsse.signature import (
    MemorySignature,
    _make_sign_key,
    _sign_envelope_with_key_binary,
)
from zeep.wsse.utils import WSU, get_security_header

EBOX_NS = "urn:ebox:ns:EboxMessage:v1"
# Well within the longest lifetime eBox accepts (10 minutes unless its operator set less); a
# request is accepted only within 5 minutes of its Created time anyway.
TIMESTAMP_LIFETIME = timedelta(minutes=5)


def _xsd_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TimestampedSignature(MemorySignature):
    """WS-Security for eBox: adds a wsu:Timestamp, then signs Body and Timestamp.

    key_pem and cert_pem are PEM bytes (the private key unencrypted, or give its password).
    The signature algorithm follows the key: RSA-SHA256 or ECDSA-SHA256.
    """

    def __init__(self, key_pem: bytes, cert_pem: bytes, password: bytes | None = None) -> None:
        public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
        method = (
            constants.TransformEcdsaSha256
            if isinstance(public_key, ec.EllipticCurvePublicKey)
            else constants.TransformRsaSha256
        )
        super().__init__(
            key_pem,
            cert_pem,
            password,
            signature_method=method,
            digest_method=constants.TransformSha256,
        )

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> tuple[Any, Any]:
        created = datetime.now(UTC)
        get_security_header(envelope).append(
            WSU.Timestamp(
                WSU.Created(_xsd_datetime(created)),
                WSU.Expires(_xsd_datetime(created + TIMESTAMP_LIFETIME)),
            )
        )
        key = _make_sign_key(self.key_data, self.cert_data, self.password)
        # Signs the Body and the Timestamp found in the header, and adds the token.
        _sign_envelope_with_key_binary(envelope, key, self.signature_method, self.digest_method)
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        return envelope


def make_client(
    wsdl_url: str,
    key_pem: bytes,
    cert_pem: bytes,
    *,
    password: bytes | None = None,
    timeout: float = 60,
    session: requests.Session | None = None,
) -> zeep.Client:
    """A zeep client built from the served WSDL, signing every request."""
    if session is None:
        session = requests.Session()
        # Only the address given is contacted: no proxy from the environment.
        session.trust_env = False
    transport = Transport(session=session, timeout=timeout, operation_timeout=timeout)
    return zeep.Client(
        wsdl_url,
        wsse=TimestampedSignature(key_pem, cert_pem, password),
        transport=transport,
    )


def document(pdf: bytes, file_name: str, algorithm: str = "SHA-256") -> dict[str, Any]:
    """The Document element of publishEboxMessage for a PDF: its digest computed here."""
    hash_name = {"SHA-256": "sha256", "SHA-512": "sha512"}[algorithm]
    digest = hashlib.new(hash_name, pdf).digest()
    return {
        "DownloadFileName": file_name,
        "MediaType": "application/pdf",
        "Digest": {"_value_1": digest, "Algorithm": algorithm},
        "Content": pdf,
    }


def publish_pdf(client: zeep.Client, **message: Any) -> Any:
    """Call publishEboxMessage; the answer has EboxMessageId, ExpirationDate, CitizenActivated.

    The arguments are those of message_fields(). Calling it again with the same ticket and
    sequence and the same message is safe: the answer names the message already published.
    """
    return client.service.publishEboxMessage(**message_fields(**message))


def send_registered_pdf(client: zeep.Client, **message: Any) -> Any:
    """Call sendRegisteredDocument of the RegisteredMail v1 service (a client made from its
    WSDL): publishEboxMessage's answer plus the sealed SubmissionAcceptance evidence."""
    return client.service.sendRegisteredDocument(**message_fields(**message))


def message_fields(
    *,
    recipient: str,
    message_type: str,
    title: str,
    pdf: bytes,
    file_name: str,
    ticket: str,
    sequence: int | None = None,
    language: str = "nl",
    body_text: str | None = None,
    expiration_date: date | None = None,
) -> dict[str, Any]:
    """The fields of a publication, shared by both services."""
    message_id: dict[str, Any] = {"Ticket": ticket}
    if sequence is not None:
        message_id["Sequence"] = sequence
    return {
        "MessageID": message_id,
        "Recipient": recipient,
        "MessageType": message_type,
        "Language": language,
        "Title": title,
        "BodyText": body_text,
        "Document": document(pdf, file_name),
        "ExpirationDate": expiration_date,
    }


def save_proof_of_delivery(client: zeep.Client, message_id: str, folder: Path) -> list[Path]:
    """Fetch the latest proof of a registered message and keep it: the signed PDF and every
    sealed evidence XML, byte for byte as eBox sealed them (verify them with
    `flask --app app ebox evidence verify FILE`, xmlsec1 or any PDF reader)."""
    answer = client.service.getProofOfDelivery(EboxMessageId=message_id)
    folder.mkdir(parents=True, exist_ok=True)
    pdf = folder / f"proof-{message_id}-v{answer.ProofVersion}.pdf"
    pdf.write_bytes(answer.Pdf)
    saved = [pdf]
    for position, evidence in enumerate(answer.Evidence, start=1):
        path = folder / f"evidence-{message_id}-{position:02d}-{evidence.Type}.xml"
        path.write_bytes(evidence.Xml)
        saved.append(path)
    return saved


def fault_code(fault: zeep.exceptions.Fault) -> str | None:
    """The business code of a Fault from eBox (docs/integration/README.md lists them)."""
    if fault.detail is None:
        return None
    return fault.detail.findtext(f"{{{EBOX_NS}}}EboxFault/{{{EBOX_NS}}}Code")
