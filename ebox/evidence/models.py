"""Sealed evidence of a registered document's events, and the PDF proofs made of them.

Evidence outlives the document: the purge never touches these rows, which are kept until
keep_until (EBOX_EVIDENCE_RETENTION_YEARS after the event).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model


class Evidence(Model):
    """One event of one registered document, as the sealed XML that proves it."""

    __tablename__ = "evidences"
    __table_args__ = (
        # Each event happens once per document: a second handover is the same handover.
        UniqueConstraint("document_id", "event", name="uq_evidences_document_event"),
        UniqueConstraint("document_id", "position", name="uq_evidences_document_position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    position: Mapped[int]  # 1, 2, 3... in the document's chain
    event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    keep_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the row was written (event_at may lie in the past: an expiry sealed late). The proof
    # sweep looks at recent rows only.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DeliveryProof(Model):
    """A signed PDF proof of delivery. A later event makes a new version; old ones are kept."""

    __tablename__ = "delivery_proofs"
    __table_args__ = (
        UniqueConstraint("document_id", "version", name="uq_delivery_proofs_document_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), index=True)
    version: Mapped[int]
    evidence_count: Mapped[int]  # the proof covers the chain's first evidence_count events
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
