"""Proof of delivery: the PDF certificate of a registered document, sealed by the platform.

The certificate states only what the document's sealed evidence states: every fact on it is read
back from the evidence XMLs, never from the database. Those XMLs travel inside the PDF as file
attachments, byte for byte, so the certificate can be checked against its sources. The PDF is
then sealed (PAdES, with an RFC 3161 timestamp when a timestamp authority is configured), so any
PDF reader, pyHanko or poppler's pdfsig tells whether it was changed since.

Rendering needs an application context (templates, translations).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import io
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import cms, pem
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from babel.dates import format_date
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import render_template
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import get_pyca_cryptography_hash
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from weasyprint import HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from ebox.db_types import utcnow
from ebox.evidence import timestamp, xml
from ebox.evidence.seal import Seal
from ebox.evidence.services import NOT_RETRIEVED
from ebox.evidence.xml import EvidenceFacts

FIELD_NAME = "eBoxSeal"
TEMPLATE = "evidence/proof.html"
LANGUAGES = ("nl", "fr", "de", "en")
XML_MEDIA_TYPE = "application/xml"
TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"
MAX_TIMESTAMP_REPLY = 1024 * 1024  # a reply is a few kilobytes
_EVIDENCE_SCHEME = "ebox-evidence:"

# WeasyPrint logs each rendering step at INFO: seven lines per proof say nothing an operator needs.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

EVENT_LABELS = {
    xml.SUBMISSION_ACCEPTANCE: _l("Accepted for delivery by the platform"),
    xml.CONTENT_CONSIGNMENT: _l("Made available in the recipient's eBox"),
    xml.CONTENT_HANDOVER: _l("Opened by the recipient"),
    xml.CONTENT_HANDOVER_FAILURE: _l("Not opened before its expiry"),
}
# A ContentHandover that names a representative: the recipient did not open it themselves.
HANDOVER_BY_REPRESENTATIVE = _l("Opened on the recipient's behalf")
# Reasons the platform itself writes, shown in the proof's language; any other is shown as is.
KNOWN_REASONS = {
    NOT_RETRIEVED: _l("The document was not opened before its expiry; its content was deleted."),
}


class InvalidChain(ValueError):
    """The evidence given is not one document's chain: the proof would state something false."""


@dataclass(frozen=True)
class ProofEvidence:
    """One sealed evidence: its XML exactly as stored, and what it states."""

    xml: bytes
    facts: EvidenceFacts


def message_identity(facts: EvidenceFacts) -> tuple[object, ...]:
    """What makes it this message. The rest may change between two events of a chain kept for
    years (a sender renamed, the platform moved to another address) without making it another
    message."""
    return (
        facts.platform_message_id,
        facts.document_sha256,
        facts.recipient_national_number,
        facts.sender_enterprise_number,
        facts.sender_ticket,
        facts.sender_sequence,
        facts.submission_time,
        tuple((attachment.position, attachment.sha256) for attachment in facts.attachments),
    )


@dataclass(frozen=True)
class Proof:
    """The certificate's content: the chain, and the document as its first evidence describes
    it (what was true when it was submitted)."""

    evidence: tuple[ProofEvidence, ...]
    message: EvidenceFacts  # the first evidence: the message as it was submitted
    document_title: str | None
    document_file_name: str | None

    def attachment_names(self) -> list[str]:
        return [
            f"evidence-{position:02d}-{item.facts.event}-{item.facts.evidence_id}.xml"
            for position, item in enumerate(self.evidence, start=1)
        ]


def render_proof(
    chain: Sequence[bytes],
    *,
    language: str,
    version: int,
    seal: Seal,
    tsa_url: str | None = None,
    tsa_root_pem: bytes | None = None,
) -> bytes:
    """The signed PDF proof of delivery of one document, from its sealed evidence XMLs in chain
    order: rendered in language (nl, fr, de or en), the XMLs attached, sealed with seal.

    Raises InvalidChain when the XMLs are not one unbroken chain of one document.
    """
    if language not in LANGUAGES:
        raise ValueError(f"no proof in language {language!r}")
    proof = read_chain(chain)
    with force_locale(language):
        html = render_template(
            TEMPLATE,
            proof=proof,
            language=language,
            version=version,
            generated_at=utcnow(),
            event_labels=EVENT_LABELS,
            handover_by_representative=HANDOVER_BY_REPRESENTATIVE,
            reasons=KNOWN_REASONS,
            utc=utc_moment,
            utc_date=utc_date,
            utc_time=utc_time,
        )
        reason = _("Proof of delivery of a registered electronic document")
    with _garbage_collected_young():
        pdf = _write_pdf(html, proof)
        return _seal_pdf(
            pdf,
            seal,
            reason=reason,
            location=proof.message.issuer_url,
            tsa_url=tsa_url,
            tsa_root_pem=tsa_root_pem,
        )


@contextlib.contextmanager
def _garbage_collected_young() -> Iterator[None]:
    """Collect the rendering's garbage in one go at the end, while it is young.

    WeasyPrint leaves tens of thousands of objects in reference cycles per proof. With the
    collector running during the rendering they survive into the oldest generation, and every
    few proofs a full collection walks the whole process (a fifth of the time). Collected here,
    only the rendering's own objects are looked at.
    """
    if not gc.isenabled():  # whoever disabled it has reasons of their own
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)


# --- reading the evidence --------------------------------------------------------------------


def read_chain(chain: Sequence[bytes]) -> Proof:
    """The evidence XMLs parsed and checked to be one document's chain, in order: each names
    the digest of the one before it and the same message."""
    if not chain:
        raise InvalidChain("a proof needs at least one evidence")
    evidence = tuple(read_evidence(item) for item in chain)
    previous: ProofEvidence | None = None
    for item in evidence:
        expected = xml.digest(previous.xml) if previous is not None else None
        if item.facts.previous_evidence_sha256 != expected:
            raise InvalidChain(
                f"evidence {item.facts.evidence_id} does not follow the one before it"
            )
        if message_identity(item.facts) != message_identity(evidence[0].facts):
            raise InvalidChain(f"evidence {item.facts.evidence_id} is about another message")
        previous = item
    return Proof(
        evidence=evidence,
        message=evidence[0].facts,
        document_title=_first_stated(item.facts.document_title for item in evidence),
        document_file_name=_first_stated(item.facts.document_file_name for item in evidence),
    )


def read_evidence(document: bytes) -> ProofEvidence:
    """One sealed evidence XML and its facts (its signature is not checked here)."""
    try:
        return ProofEvidence(xml=document, facts=xml.read_facts(document))
    except xml.EvidenceFormatError as error:
        raise InvalidChain(str(error)) from None


def _first_stated(values: Iterable[str | None]) -> str | None:
    """A fact that evidence older than it does not state."""
    return next((value for value in values if value is not None), None)


# --- showing it ------------------------------------------------------------------------------


def utc_moment(moment: datetime) -> str:
    """A moment in UTC, its date in the current language, said to be UTC whatever the language
    (babel's own zone names vary: French writes "TU")."""
    return f"{utc_date(moment)}, {utc_time(moment)}"


def utc_date(moment: datetime) -> str:
    return str(format_date(moment.astimezone(UTC), "long", locale=get_locale()))


def utc_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M:%S} UTC"


def _write_pdf(html: str, proof: Proof) -> bytes:
    files = {f"{_EVIDENCE_SCHEME}{index}": item.xml for index, item in enumerate(proof.evidence)}
    fetcher = _EvidenceFetcher(files)
    attachments = [
        Attachment(
            url=f"{_EVIDENCE_SCHEME}{index}",
            url_fetcher=fetcher,
            name=name,
            description=f"{item.facts.event} {item.facts.evidence_id}",
            created=item.facts.event_time,
            modified=item.facts.event_time,
            relationship="Source",
        )
        for index, (item, name) in enumerate(
            zip(proof.evidence, proof.attachment_names(), strict=True)
        )
    ]
    pdf: bytes = HTML(string=html, url_fetcher=fetcher).write_pdf(
        attachments=attachments, font_config=_font_configuration()
    )
    return pdf


_per_thread = threading.local()


def _font_configuration() -> FontConfiguration:
    """One per thread, kept: its Pango font map caches what every proof needs again (a third of
    the rendering time), and a font map must not be shared between threads."""
    fonts: FontConfiguration | None = getattr(_per_thread, "fonts", None)
    if fonts is None:
        fonts = _per_thread.fonts = FontConfiguration()
    return fonts


class _EvidenceFetcher(URLFetcher):
    """Serves the evidence XMLs to WeasyPrint as application/xml (a file name alone would make
    them text/xml) and refuses every other URL: a proof never loads anything from outside."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(fail_on_errors=True)
        self._files = files

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        if url not in self._files:
            raise ValueError(f"a proof of delivery loads nothing from {url!r}")
        return URLFetcherResponse(url, self._files[url], headers={"Content-Type": XML_MEDIA_TYPE})


# --- sealing it ------------------------------------------------------------------------------


def _seal_pdf(
    pdf: bytes,
    seal: Seal,
    *,
    reason: str,
    location: str,
    tsa_url: str | None,
    tsa_root_pem: bytes | None = None,
) -> bytes:
    signer = _signer(seal.key_pem, seal.cert_pem, seal.root_pem, seal.intermediate_pems)
    metadata = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
    )
    timestamper = _TimeStamper(tsa_url, tsa_root_pem) if tsa_url else None
    output = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)),
        metadata,
        signer=signer,
        timestamper=timestamper,
        # Given, so pyHanko does not sign (and timestamp) a dummy first to measure the space.
        bytes_reserved=_space_for_signature(signer, timestamped=timestamper is not None),
    )
    return bytes(output.getvalue())


class _TimeStamper(TimeStamper):
    """pyHanko's timestamper, getting its tokens from ebox.evidence.timestamp: the one client
    of the authority, which checks status, nonce and imprint (and, unlike pyHanko's aiohttp
    client, opens no new session and TLS context per request)."""

    def __init__(self, url: str, root_pem: bytes | None = None) -> None:
        super().__init__()
        self.url = url
        self.root_pem = root_pem

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        if md_algorithm != "sha256":
            raise ValueError(f"proofs are timestamped over SHA-256, not {md_algorithm}")
        token = await asyncio.to_thread(
            functools.partial(
                timestamp.timestamp_digest,
                self.url,
                message_digest,
                trusted_root_pem=self.root_pem,
            )
        )
        return cms.ContentInfo.load(token)


def _space_for_signature(signer: _SealSigner, *, timestamped: bool) -> int:
    """Room for the CMS signature: the certificates it embeds, the signature and its signed
    attributes, and a timestamp token (with the authority's certificates) when there is one."""
    needed = 4096 + signer.certificates_size + (12288 if timestamped else 0)
    return -(-needed // 1024) * 1024  # pyHanko wants an even size; whole kilobytes it is


@functools.lru_cache(maxsize=4)
def _signer(
    key_pem: bytes, cert_pem: bytes, root_pem: bytes, intermediate_pems: tuple[bytes, ...] = ()
) -> _SealSigner:
    """One signer per seal: parsing an RSA key (with its consistency checks) costs more than
    rendering a proof. The signature embeds the intermediate CAs and the root, so that a PDF
    reader trusting the root finds the whole path."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey):
        raise ValueError("the seal key must be an RSA or an EC key")
    return _SealSigner(
        signing_cert=_certificate(cert_pem),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs(
            [*(_certificate(item) for item in intermediate_pems), _certificate(root_pem)]
        ),
        private_key=key,
    )


class _SealSigner(signers.SimpleSigner):
    """pyHanko's in-memory signer, keeping the parsed key: SimpleSigner parses it again for
    every signature."""

    def __init__(
        self,
        *,
        signing_cert: asn1_x509.Certificate,
        signing_key: asn1_keys.PrivateKeyInfo,
        cert_registry: SimpleCertificateStore,
        private_key: RSAPrivateKey | EllipticCurvePrivateKey,
    ) -> None:
        super().__init__(
            signing_cert=signing_cert, signing_key=signing_key, cert_registry=cert_registry
        )
        self._private_key = private_key
        self.certificates_size = len(signing_cert.dump()) + sum(
            len(cert.dump()) for cert in cert_registry
        )

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        hash_algorithm = get_pyca_cryptography_hash(digest_algorithm)
        key = self._private_key
        if mechanism == "rsassa_pkcs1v15" and isinstance(key, RSAPrivateKey):
            return key.sign(data, PKCS1v15(), hash_algorithm)
        if mechanism == "ecdsa" and isinstance(key, EllipticCurvePrivateKey):
            return key.sign(data, ECDSA(hash_algorithm))
        return super().sign_raw(data, digest_algorithm)  # any other mechanism: pyHanko's way


def _certificate(pem_bytes: bytes) -> asn1_x509.Certificate:
    _, _, der = pem.unarmor(pem_bytes)
    return asn1_x509.Certificate.load(der)
