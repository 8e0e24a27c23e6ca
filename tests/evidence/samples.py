"""Evidence facts for tests: a plausible registered message, any fact replaced by keyword."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from ebox.evidence.xml import EvidenceFacts

SUBMITTED = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def sample_facts(event: str = "ContentHandover", **changes: Any) -> EvidenceFacts:
    facts = EvidenceFacts(
        evidence_id=str(uuid.uuid4()),
        event=event,
        event_time=datetime(2026, 11, 29, 9, 30, tzinfo=UTC),
        issuer_name="eBox",
        issuer_url="https://ebox.example",
        sender_enterprise_number="0123456749",
        sender_name="Federal Pension Service",
        sender_application="eBox RegisteredMail v1",
        recipient_national_number="85073003328",
        platform_message_id=str(uuid.uuid4()),
        sender_ticket="PENSION-2026-000123",
        sender_sequence=3,
        submission_time=SUBMITTED,
        document_sha256="4f" * 32,
        previous_evidence_sha256=None,
    )
    return dataclasses.replace(facts, **changes)
