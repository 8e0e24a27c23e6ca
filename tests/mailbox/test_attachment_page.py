"""The citizen sees a message's attachments on its page and downloads each one; nobody else
reaches them, a registered letter keeps them closed until it is opened, every download is
recorded."""

from __future__ import annotations

import hashlib
import logging
import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document, DocumentAccessEvent
from ebox.mailbox.publication import SubmittedAttachment
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    create_sender,
    login,
    make_png,
)
from tests.mailbox.mailbox_helpers import without_tokens
from tests.mandates.test_mandates import accept_and_read, browser_of, invite

ANNEX = make_pdf("Annex", ["Calculation details"])
PLAN = make_png(40, 20)


def with_attachments(recipient, **fields) -> Document:
    attachments = [
        SubmittedAttachment("calculation.pdf", "application/pdf", ANNEX),
        SubmittedAttachment("floor plan.png", "image/png", PLAN),
    ]
    return create_document(recipient, attachments=attachments, **fields)


def test_the_document_page_lists_each_attachment_with_its_type_and_size(client) -> None:
    citizen = create_citizen()
    document = with_attachments(citizen)
    login(client, citizen)

    html = client.get(f"/documents/{document.id}").get_data(as_text=True)
    assert "Attachments" in html
    assert "calculation.pdf" in html and "floor plan.png" in html
    assert "PDF document" in html and "PNG image" in html
    assert f"/documents/{document.id}/attachments/1" in html
    assert f"/documents/{document.id}/attachments/2" in html


def test_a_document_without_attachments_shows_no_attachments_section(client) -> None:
    citizen = create_citizen()
    document = create_document(citizen)
    login(client, citizen)
    assert "Attachments" not in client.get(f"/documents/{document.id}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("position", "content", "name"), [(1, ANNEX, "calculation.pdf"), (2, PLAN, "floor plan.png")]
)
def test_each_attachment_downloads_as_a_file_never_rendered(
    client, position: int, content: bytes, name: str
) -> None:
    citizen = create_citizen()
    document = with_attachments(citizen)
    login(client, citizen)

    response = client.get(f"/documents/{document.id}/attachments/{position}")
    assert response.status_code == 200
    assert hashlib.sha256(response.data).digest() == hashlib.sha256(content).digest()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert name in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.headers["Cache-Control"] == "no-store"


def test_each_download_is_recorded_and_shown_in_the_history(client) -> None:
    citizen = create_citizen()
    document = with_attachments(citizen)
    login(client, citizen)
    client.get(f"/documents/{document.id}/attachments/2")

    actions = db.session.scalars(
        select(DocumentAccessEvent.action).where(DocumentAccessEvent.document_id == document.id)
    ).all()
    assert actions == ["attachment_download"]
    assert "You downloaded an attachment" in client.get("/history").get_data(as_text=True)


def test_a_position_the_message_does_not_have_answers_404(client) -> None:
    citizen = create_citizen()
    document = with_attachments(citizen)
    login(client, citizen)
    for position in (0, 3, 11):
        assert client.get(f"/documents/{document.id}/attachments/{position}").status_code == 404


def test_another_citizens_attachment_answers_exactly_like_a_missing_one(client, caplog) -> None:
    theirs = with_attachments(create_citizen())
    login(client, create_citizen())
    missing_id = uuid.uuid4()
    with caplog.at_level(logging.WARNING, logger="ebox.mailbox.views"):
        foreign = client.get(f"/documents/{theirs.id}/attachments/1")
    missing = client.get(f"/documents/{missing_id}/attachments/1")
    assert foreign.status_code == missing.status_code == 404
    assert without_tokens(foreign.get_data(as_text=True), theirs.id) == without_tokens(
        missing.get_data(as_text=True), missing_id
    )
    assert ANNEX not in foreign.data
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_registered_letters_attachments_open_only_with_the_letter(client) -> None:
    citizen = create_citizen()
    letter = with_attachments(citizen, is_registered=True)
    login(client, citizen)

    closed = client.get(f"/documents/{letter.id}").get_data(as_text=True)
    assert "calculation.pdf" not in closed
    assert client.get(f"/documents/{letter.id}/attachments/1").status_code == 403
    db.session.refresh(letter)
    assert letter.read_at is None  # trying an attachment records no receipt

    letter.read_at = letter.published_at  # the receipt confirmed (tested in its own right)
    db.session.commit()
    assert client.get(f"/documents/{letter.id}/attachments/1").data == ANNEX


def test_a_trusted_person_downloads_within_the_mandate_and_gets_404_outside(app: Flask) -> None:
    owner = create_citizen(given_name="Odette", surname="Owner")
    holder = create_citizen(given_name="Hector", surname="Holder")
    pensions = create_message_type(create_sender(name="Pensions"), code="PENSION")
    taxes = create_message_type(create_sender(name="Taxes"), code="TAX")
    inside = with_attachments(owner, message_type=pensions)
    outside = with_attachments(owner, message_type=taxes)
    owner_client, holder_client = browser_of(app, owner), browser_of(app, holder)
    code = invite(owner_client, holder, scope="chosen", senders=str(pensions.sender_id))
    accept_and_read(holder_client, code)

    assert holder_client.get(f"/documents/{inside.id}/attachments/2").data == PLAN
    assert holder_client.get(f"/documents/{outside.id}/attachments/2").status_code == 404
    history = owner_client.get("/history").get_data(as_text=True)
    assert "Hector Holder, your trusted person, downloaded an attachment" in history
