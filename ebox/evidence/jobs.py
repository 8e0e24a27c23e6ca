"""Worker jobs of registered mail: the signed PDF proof of delivery of each new event."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from ebox import metrics, transactions
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.events import services as events
from ebox.events.models import MESSAGE_PROOF_READY
from ebox.evidence import services
from ebox.evidence.models import DeliveryProof
from ebox.extensions import db
from ebox.mailbox.models import Document

log = logging.getLogger(__name__)

# The sweep looks at evidence recorded this recently: longer than a worker is ever down.
SWEEP_WINDOW = timedelta(days=3)
SWEEP_BATCH = 200
_ATTEMPTS = 3


def make_proof(document_id: str) -> int | None:
    """Make a new version of the document's proof if its chain has grown since the latest one.

    Returns the version made, or None when the latest proof already covers every event. Two
    workers making the same version meet on the unique (document, version): the loser reads
    the chain again.
    """
    for _ in range(_ATTEMPTS):
        try:
            return _make_proof_once(uuid.UUID(document_id))
        except IntegrityError:
            transactions.rollback()
            log.info("proof of %s made concurrently; checking again", document_id)
    raise RuntimeError(f"could not make the proof of {document_id} after {_ATTEMPTS} attempts")


def _make_proof_once(document_id: uuid.UUID) -> int | None:
    from ebox.evidence.proofs import render_proof  # WeasyPrint: loaded by the worker only

    document = db.session.get(Document, document_id)
    if document is None or not document.is_registered:
        raise ValueError(f"no registered document {document_id}")
    chain = services.chain_of(document_id)
    latest = services.latest_proof(document_id)
    if latest is not None and latest.evidence_count >= len(chain):
        transactions.rollback()
        return None
    version = latest.version + 1 if latest is not None else 1
    pdf = render_proof(
        [item.xml for item in chain],
        language=document.language,
        version=version,
        seal=services.platform_seal(),
        tsa_url=current_settings().tsa_url or None,
        tsa_root_pem=services.tsa_root(),
    )
    db.session.add(
        DeliveryProof(document_id=document_id, version=version, evidence_count=len(chain), pdf=pdf)
    )
    events.record_event(
        sender_id=document.sender_id,
        document_id=document_id,
        type=MESSAGE_PROOF_READY,
        at=utcnow(),
        data={"version": version, "evidenceCount": len(chain)},
    )
    transactions.commit()
    metrics.count_proof_made()
    log.info("proof of delivery %s v%d (%d events) made", document_id, version, len(chain))
    return version


def make_missing_proofs() -> int:
    """Periodic: make the proofs that a lost request or exhausted retries left missing."""
    made = 0
    since = utcnow() - SWEEP_WINDOW
    for document_id in services.documents_missing_a_proof(since, SWEEP_BATCH):
        try:
            if make_proof(str(document_id)) is not None:
                made += 1
        except Exception:  # one document's failure must not stop the others
            transactions.rollback()
            log.exception("proof sweep: the proof of %s failed", document_id)
    if made:
        log.info("proof sweep: %d missing proofs made", made)
    return made


def forget_expired_evidence() -> int:
    """Daily: evidence and proofs past EBOX_EVIDENCE_RETENTION_YEARS go, message by message."""
    return services.forget_expired_evidence()
