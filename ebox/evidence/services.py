"""Recording evidence: each event of a registered document, sealed and chained, exactly once;
and the PDF proofs of delivery made of it.

A new evidence asks the worker, once its transaction has committed, for a new proof
(ebox.evidence.jobs.make_proof). Should that request be lost (Redis down at that moment), the
periodic sweep finds documents whose latest proof covers fewer events than their chain.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app, g
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import load_only

from ebox import transactions
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.errors import ConfigError
from ebox.events import services as events
from ebox.events.models import MESSAGE_EVIDENCE_RECORDED
from ebox.evidence import xml
from ebox.evidence.models import DeliveryProof, Evidence
from ebox.evidence.seal import Seal, load_seal
from ebox.extensions import db
from ebox.jobs import queue
from ebox.mailbox.models import Document

log = logging.getLogger(__name__)

APPLICATION = "eBox RegisteredMail v1"
NOT_RETRIEVED = "The document was not opened before its expiry; its content was deleted."
_SEAL = "ebox.evidence.seal"
_TSA_ROOT = "ebox.evidence.tsa_root"
# The events that end a chain: a document is opened, or expires unopened, never both.
_FINAL_EVENTS = (xml.CONTENT_HANDOVER, xml.CONTENT_HANDOVER_FAILURE)
# A failed proof (the timestamp authority down, say) is tried again after these delays; the
# periodic sweep (ebox.evidence.jobs) catches anything still missing after that.
PROOF_RETRY_INTERVALS = [10, 60, 300]


def platform_seal() -> Seal:
    """The application's seal, loaded (or, embedded default, made) once per application."""
    seal: Seal | None = current_app.extensions.get(_SEAL)
    if seal is None:
        settings = current_settings()
        seal = load_seal(
            key_path=settings.seal_key,
            cert_path=settings.seal_cert,
            root_path=settings.seal_ca_cert,
            instance_path=settings.instance_path,
            earlier_certs_path=settings.seal_previous_certs,
            earlier_roots_path=settings.seal_previous_ca_certs,
        )
        current_app.extensions[_SEAL] = seal
    return seal


def tsa_root() -> bytes | None:
    """The configured timestamp authority's root CA, read once per application."""
    settings = current_settings()
    if not settings.tsa_ca_cert:
        return None
    cached: tuple[str, bytes] | None = current_app.extensions.get(_TSA_ROOT)
    if cached is None or cached[0] != settings.tsa_ca_cert:
        try:
            cached = (settings.tsa_ca_cert, Path(settings.tsa_ca_cert).read_bytes())
        except OSError as error:
            raise ConfigError(
                f"EBOX_TSA_CA_CERT: cannot read {settings.tsa_ca_cert!r} ({error.strerror})"
            ) from error
        current_app.extensions[_TSA_ROOT] = cached
    return cached[1]


def record_evidence(
    document: Document,
    event: str,
    *,
    at: datetime | None = None,
    reason: str | None = None,
    authentication: xml.RecipientAuthentication | None = None,
    representative: xml.Representative | None = None,
    sender_certificate_sha256: str | None = None,
) -> Evidence | None:
    """Seal event as the next link of the document's chain, in the caller's transaction.

    authentication is the login of whoever caused the event (the one who opened the document);
    with representative (a ContentHandover only), that person opened it on the recipient's
    behalf, and the login is sealed as theirs.

    Returns None when the document already has this event: concurrent openings, a retried job
    or a rerun purge record it once. Handover and non-retrieval end a chain: once either is
    sealed, neither is sealed again. Flushes, never commits.
    """
    if not document.is_registered:
        raise ValueError("only registered documents have evidence")
    _lock(document)
    if _existing(document, *(_FINAL_EVENTS if event in _FINAL_EVENTS else (event,))):
        return None
    previous = db.session.scalars(
        select(Evidence)
        .where(Evidence.document_id == document.id)
        .order_by(Evidence.position.desc())
    ).first()
    moment = at or utcnow()
    settings = current_settings()
    evidence_id = uuid.uuid4()
    sealed = xml.build_and_seal(
        xml.EvidenceFacts(
            evidence_id=str(evidence_id),
            event=event,
            event_time=moment,
            issuer_name="eBox",
            issuer_url=settings.public_url,
            sender_enterprise_number=document.sender.enterprise_number,
            sender_name=document.sender.name,
            sender_application=APPLICATION,
            recipient_national_number=document.recipient_national_number,
            platform_message_id=str(document.id),
            sender_ticket=document.sender_ticket,
            sender_sequence=document.sender_sequence,
            submission_time=document.published_at,
            document_sha256=document.sha256,
            previous_evidence_sha256=previous.sha256 if previous else None,
            reason=reason,
            # What the proof of delivery names; kept here because the purge erases it from
            # the document while the evidence is kept for years.
            document_title=document.title,
            document_file_name=document.file_name,
            recipient_authentication=None if representative else authentication,
            representative=representative,
            representative_authentication=authentication if representative else None,
            sender_certificate_sha256=sender_certificate_sha256,
            available_until=document.expires_at,
            sealing_time=utcnow(),
            attachments=tuple(
                xml.AttachmentDigest(row.position, row.file_name, row.sha256)
                for row in document.attachments
            ),
        ),
        platform_seal(),
        tsa_url=settings.tsa_url or None,
        tsa_root_pem=tsa_root(),
    )
    evidence = Evidence(
        id=evidence_id,
        document_id=document.id,
        event=event,
        position=(previous.position + 1) if previous else 1,
        event_at=moment,
        xml=sealed,
        sha256=xml.digest(sealed),
        keep_until=moment + timedelta(days=365 * settings.evidence_retention_years + 3),
    )
    try:
        with db.session.begin_nested():
            db.session.add(evidence)
    except IntegrityError:
        # SQLite, two openings at once: the other one committed the event first.
        if _existing(document, event) is None:
            raise
        return None
    events.record_event(
        sender_id=document.sender_id,
        document_id=document.id,
        type=MESSAGE_EVIDENCE_RECORDED,
        at=moment,
        data={"evidenceType": event, "evidenceId": str(evidence_id)},
    )
    # The representative is not named: a national number never reaches the log.
    log.info(
        "evidence %s (%s%s) of document %s sealed",
        evidence.id,
        event,
        ", by a representative" if representative else "",
        document.id,
    )
    _request_proof_after_commit(document.id)
    return evidence


def chain_of(document_id: uuid.UUID) -> list[Evidence]:
    return list(
        db.session.scalars(
            select(Evidence).where(Evidence.document_id == document_id).order_by(Evidence.position)
        )
    )


def event_chains(document_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Evidence]]:
    """Every document's evidence in chain order, in one query, without the XML itself."""
    chains: dict[uuid.UUID, list[Evidence]] = {}
    if not document_ids:
        return chains
    rows = db.session.scalars(
        select(Evidence)
        .options(
            load_only(Evidence.document_id, Evidence.event, Evidence.event_at, Evidence.sha256)
        )
        .where(Evidence.document_id.in_(document_ids))
        .order_by(Evidence.document_id, Evidence.position)
    )
    for item in rows:
        chains.setdefault(item.document_id, []).append(item)
    return chains


def latest_proof(document_id: uuid.UUID) -> DeliveryProof | None:
    return db.session.scalars(
        select(DeliveryProof)
        .where(DeliveryProof.document_id == document_id)
        .order_by(DeliveryProof.version.desc())
        .limit(1)
    ).first()


def latest_proof_versions(document_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The latest proof version of each document that has one."""
    if not document_ids:
        return {}
    rows = db.session.execute(
        select(DeliveryProof.document_id, func.max(DeliveryProof.version))
        .where(DeliveryProof.document_id.in_(document_ids))
        .group_by(DeliveryProof.document_id)
    )
    return {document_id: int(version) for document_id, version in rows}


def documents_missing_a_proof(since: datetime, limit: int) -> list[uuid.UUID]:
    """Documents with evidence recorded since `since` whose latest proof does not cover it."""
    return list(
        db.session.scalars(
            _missing_proofs(since, utcnow())
            # In no fixed order: documents whose proof keeps failing cannot fill every batch.
            .order_by(func.random())
            .limit(limit)
        )
    )


def count_late_proofs(now: datetime, *, window: timedelta, grace: timedelta) -> int:
    """Documents whose last evidence, recorded within window, has waited longer than grace
    for its proof: what operators should look at (the worker is down, or proofs fail)."""
    query = _missing_proofs(now - window, now - grace)
    return int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _missing_proofs(since: datetime, until: datetime) -> Select[uuid.UUID]:
    events = (
        select(func.count(Evidence.id)).where(Evidence.document_id == Document.id).scalar_subquery()
    )
    covered = (
        select(func.coalesce(func.max(DeliveryProof.evidence_count), 0))
        .where(DeliveryProof.document_id == Document.id)
        .scalar_subquery()
    )
    last_recorded = (
        select(Evidence.document_id)
        .where(Evidence.recorded_at >= since)  # the index: evidence is kept for years
        .group_by(Evidence.document_id)
        .having(func.max(Evidence.recorded_at).between(since, until))
    )
    return select(Document.id).where(Document.id.in_(last_recorded), events > covered)


def forget_expired_evidence(now: datetime | None = None, *, batch_size: int = 500) -> int:
    """Delete the evidence and proofs of messages whose last evidence is past its keep_until.

    A message's chain goes as a whole: deleting its oldest links first would leave evidence
    that no longer verifies as a chain. Returns how many messages were forgotten.
    """
    now = now or utcnow()
    forgotten = 0
    while True:
        documents = list(
            db.session.scalars(
                select(Evidence.document_id)
                .group_by(Evidence.document_id)
                .having(func.max(Evidence.keep_until) <= now)
                .limit(batch_size)
            )
        )
        if not documents:
            break
        db.session.execute(delete(DeliveryProof).where(DeliveryProof.document_id.in_(documents)))
        db.session.execute(delete(Evidence).where(Evidence.document_id.in_(documents)))
        transactions.commit()  # batch by batch: a crash keeps what was done (decision 0008)
        forgotten += len(documents)
    if forgotten:
        log.info("evidence and proofs of %d registered messages past retention deleted", forgotten)
    return forgotten


def _request_proof_after_commit(document_id: uuid.UUID) -> None:
    """Once per document and transaction: ask the worker for a new proof after the commit."""
    pending: set[uuid.UUID] = g.setdefault("_proofs_to_request", set())
    if document_id in pending:
        return
    pending.add(document_id)

    def request() -> None:
        pending.discard(document_id)
        request_proof(document_id)

    transactions.after_commit(request)
    transactions.after_rollback(lambda: pending.discard(document_id))


def request_proof(document_id: uuid.UUID) -> None:
    """Queue the making of the document's proof (idempotent: an up-to-date proof is kept).

    Fails fast when Redis is down: the periodic sweep makes the proof later, so one warning
    line is enough. The job is named, not imported: it builds on this module.
    """
    try:
        queue(fail_fast=True).enqueue(
            "ebox.evidence.jobs.make_proof",
            str(document_id),
            retry=Retry(max=len(PROOF_RETRY_INTERVALS), interval=PROOF_RETRY_INTERVALS),
            description=f"proof of delivery of {document_id}",
        )
    except (RedisError, OSError) as error:
        log.warning(
            "proof of %s not queued (Redis: %s); the periodic sweep will make it",
            document_id,
            error,
        )


def _existing(document: Document, *events: str) -> Evidence | None:
    return db.session.scalars(
        select(Evidence).where(Evidence.document_id == document.id, Evidence.event.in_(events))
    ).first()


def _lock(document: Document) -> None:
    """One chain writer per document (PostgreSQL; SQLite has a single writer anyway)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(Document.id).where(Document.id == document.id).with_for_update())
