"""Each change of a sender's message writes its event in the same transaction, and only then."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask

from ebox import transactions
from ebox.alerts.services import platform_today, run_inline
from ebox.db_types import utcnow
from ebox.events.models import (
    MESSAGE_DELETED,
    MESSAGE_EVIDENCE_RECORDED,
    MESSAGE_EXPIRY_WARNING_SENT,
    MESSAGE_PROOF_READY,
    MESSAGE_PUBLISHED,
    MESSAGE_READ,
)
from ebox.events.queries import event_json
from ebox.evidence.jobs import make_proof
from ebox.extensions import db
from ebox.mailbox.services import confirm_receipt, mark_read
from ebox.retention.services import purge_expired
from tests.events.events_helpers import all_events, stored_types, types_of
from tests.factories import create_citizen, create_document
from tests.mail.smtp_server import Received
from tests.retention.retention_helpers import expire


def test_a_publication_rolled_back_leaves_no_event_and_a_committed_one_leaves_one(
    app: Flask,
) -> None:
    citizen = create_citizen()
    create_document(citizen, commit=False)
    transactions.rollback()
    assert stored_types() == []

    document = create_document(citizen, ticket="TAX-2026", sequence=7)
    [event] = all_events(document.sender_id)
    body = event_json(event)
    assert body["type"] == MESSAGE_PUBLISHED
    assert body["id"].startswith("evt_") and len(body["id"]) == 36
    assert body["messageId"] == str(document.id)
    assert body["reference"] == {"ticket": "TAX-2026", "sequence": 7}
    assert body["data"]["registered"] is False
    assert body["time"].endswith("Z") and body["data"]["expiresAt"].endswith("Z")


def test_an_event_names_the_message_never_its_content_or_recipient(app: Flask) -> None:
    citizen = create_citizen()
    document = create_document(citizen, title="Secret tax debt", file_name="debt-letter.pdf")
    mark_read(document=document)
    db.session.commit()
    text = json.dumps([event_json(event) for event in all_events(document.sender_id)])
    for private in ("Secret tax debt", "debt-letter.pdf", citizen.national_number):
        assert private not in text


def test_only_the_first_reading_writes_a_read_event(app: Flask) -> None:
    document = create_document(create_citizen())
    assert mark_read(document=document)
    db.session.commit()
    assert not mark_read(document=document)
    db.session.commit()
    assert types_of(document.sender_id) == [MESSAGE_PUBLISHED, MESSAGE_READ]


def test_registered_mail_tells_each_evidence_and_each_proof(app: Flask) -> None:
    document = create_document(create_citizen(), is_registered=True)
    confirm_receipt(document=document)
    db.session.commit()
    assert make_proof(str(document.id)) == 1
    events = all_events(document.sender_id)
    assert [event.type for event in events] == [
        MESSAGE_PUBLISHED,
        MESSAGE_EVIDENCE_RECORDED,
        MESSAGE_EVIDENCE_RECORDED,
        MESSAGE_READ,
        MESSAGE_EVIDENCE_RECORDED,
        MESSAGE_PROOF_READY,
    ]
    evidence = [event.data["evidenceType"] for event in events if event.data.get("evidenceType")]
    assert evidence == ["SubmissionAcceptance", "ContentConsignment", "ContentHandover"]
    assert events[-1].data == {"version": 1, "evidenceCount": 3}


def test_the_purge_tells_each_deletion_and_each_non_retrieval(app: Flask) -> None:
    citizen = create_citizen()
    plain = create_document(citizen)
    registered = create_document(citizen, is_registered=True, message_type=plain.message_type)
    kept = create_document(citizen, message_type=plain.message_type)
    expire(plain, registered)

    purge_expired(batch_size=1)

    deleted = [e for e in all_events(plain.sender_id) if e.type == MESSAGE_DELETED]
    assert sorted(str(e.message_id) for e in deleted) == sorted([str(plain.id), str(registered.id)])
    assert kept.id not in {e.message_id for e in deleted}
    non_retrieval = [
        e
        for e in all_events(plain.sender_id)
        if e.data.get("evidenceType") == "ContentHandoverFailure"
    ]
    assert [e.message_id for e in non_retrieval] == [registered.id]
    # 3 published, 3 evidence (2 at publication, the non-retrieval), 2 deleted: all ids distinct
    assert len({e.public_id for e in all_events(plain.sender_id)}) == 8


def test_the_alert_that_warns_of_a_deletion_tells_the_sender_once(
    smtp_server: Received, app: Flask
) -> None:
    now = utcnow()
    citizen = create_citizen(email="bert@example.org")
    soon = create_document(citizen, expires_at=now + timedelta(days=3))
    later = create_document(
        citizen, expires_at=now + timedelta(days=20), message_type=soon.message_type
    )
    citizen.alerted_news_until = now + timedelta(seconds=1)  # both announced as new already
    db.session.commit()

    assert run_inline(platform_today()).sent == 1
    assert run_inline(platform_today() + timedelta(days=1)).sent == 0

    warned = [e for e in all_events(soon.sender_id) if e.type == MESSAGE_EXPIRY_WARNING_SENT]
    assert [e.message_id for e in warned] == [soon.id]
    assert later.id not in {e.message_id for e in warned}
    assert len(smtp_server.messages) == 1
