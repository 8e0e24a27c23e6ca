"""Nobody but the recipient reaches a document; every access is logged and shown to the citizen."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest

from ebox import create_app
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import DocumentAccessEvent
from tests.conftest import make_settings
from tests.factories import create_citizen, create_document, login
from tests.mailbox.mailbox_helpers import HTMX, csrf_token, post, without_tokens

READS = ("/documents/{id}", "/documents/{id}/content", "/documents/{id}/content?disposition=inline")
WRITES = ("/documents/{id}/hide", "/documents/{id}/unhide", "/documents/{id}/receipt")


@pytest.fixture
def two_citizens(client):
    """Citizen A logged in; a document of citizen B."""
    citizen_a, citizen_b = create_citizen(), create_citizen()
    theirs = create_document(citizen_b, title="B's private letter", is_registered=False)
    login(client, citizen_a)
    return citizen_a, citizen_b, theirs


def test_the_inbox_never_lists_another_citizens_document(client, two_citizens):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Your eBox is empty" in html
    assert "B&#39;s private letter" not in html and "private letter" not in html


@pytest.mark.parametrize("template", READS)
def test_another_citizens_document_answers_exactly_like_a_missing_one(
    client, two_citizens, template, caplog
):
    citizen_a, _, theirs = two_citizens
    missing_id = uuid.uuid4()
    with caplog.at_level(logging.WARNING, logger="ebox.mailbox.views"):
        foreign = client.get(template.format(id=theirs.id))
    missing = client.get(template.format(id=missing_id))

    assert foreign.status_code == missing.status_code == 404
    assert without_tokens(foreign.get_data(as_text=True), theirs.id) == without_tokens(
        missing.get_data(as_text=True), missing_id
    )
    assert "private letter" not in foreign.get_data(as_text=True)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert theirs.id in warnings[0].args
    # The attempt names the citizen by id, never by national number.
    assert warnings[0].args[0] == citizen_a.id
    assert citizen_a.national_number not in warnings[0].getMessage()


@pytest.mark.parametrize("template", WRITES)
def test_another_citizens_document_cannot_be_hidden_unhidden_or_confirmed(
    client, two_citizens, template
):
    _, _, theirs = two_citizens
    foreign = post(client, template.format(id=theirs.id))
    missing_id = uuid.uuid4()
    missing = post(client, template.format(id=missing_id))

    assert foreign.status_code == missing.status_code == 404
    assert without_tokens(foreign.get_data(as_text=True), theirs.id) == without_tokens(
        missing.get_data(as_text=True), missing_id
    )
    db.session.refresh(theirs)
    assert theirs.hidden_at is None and theirs.read_at is None
    assert db.session.query(DocumentAccessEvent).count() == 0


def test_an_expired_or_deleted_document_answers_404(client):
    citizen = create_citizen()
    expired, deleted = create_document(citizen), create_document(citizen)
    expired.expires_at = utcnow() - timedelta(minutes=1)
    deleted.deleted_at = utcnow()
    db.session.commit()
    login(client, citizen)

    for document in (expired, deleted):
        assert client.get(f"/documents/{document.id}").status_code == 404
        assert client.get(f"/documents/{document.id}/content").status_code == 404
        assert post(client, f"/documents/{document.id}/hide").status_code == 404


def test_anonymous_visitors_cannot_reach_a_document(client):
    document = create_document(create_citizen())
    for template in READS:
        response = client.get(template.format(id=document.id))
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_posts_without_a_csrf_token_are_refused(client):
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    login(client, citizen)

    for template in WRITES:
        assert client.post(template.format(id=document.id)).status_code == 400
        assert (
            client.post(template.format(id=document.id), data={"csrf_token": "forged"}).status_code
            == 400
        )
    db.session.refresh(document)
    assert document.hidden_at is None and document.read_at is None


def test_hiding_without_javascript_redirects_back_with_a_message(client):
    citizen = create_citizen()
    document = create_document(citizen, title="Old letter")
    login(client, citizen)

    response = post(client, f"/documents/{document.id}/hide", {"view": "inbox", "next": "/?q=old"})
    assert response.status_code == 303 and response.headers["Location"] == "/?q=old"
    db.session.refresh(document)
    assert document.hidden_at is not None
    assert "is now in the archive" in client.get("/?q=old").get_data(as_text=True)

    response = post(client, f"/documents/{document.id}/unhide", {"next": "https://evil.example/"})
    assert response.headers["Location"] == "/"
    db.session.refresh(document)
    assert document.hidden_at is None


def test_hiding_with_htmx_swaps_the_row_for_a_notice_with_an_undo_button(client):
    citizen = create_citizen()
    document = create_document(citizen, title="Old letter")
    login(client, citizen)
    token = csrf_token(client)

    response = client.post(
        f"/documents/{document.id}/hide",
        data={"csrf_token": token, "view": "inbox", "next": "/"},
        headers=HTMX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert f'id="document-{document.id}"' in html and "is now in the archive" in html
    assert f'hx-post="/documents/{document.id}/unhide"' in html

    undo = client.post(
        f"/documents/{document.id}/unhide",
        data={"csrf_token": token, "view": "inbox", "next": "/"},
        headers=HTMX,
    ).get_data(as_text=True)
    assert 'class="document__title"' in undo and "Old letter" in undo


def test_the_document_page_swaps_its_archive_button_with_htmx(client):
    citizen = create_citizen()
    document = create_document(citizen)
    login(client, citizen)
    token = csrf_token(client)

    data = {"csrf_token": token, "view": "document", "next": f"/documents/{document.id}"}
    hidden = client.post(f"/documents/{document.id}/hide", data=data, headers=HTMX)
    assert 'id="archive-toggle"' in hidden.get_data(as_text=True)
    assert "Move back to the inbox" in hidden.get_data(as_text=True)


def test_every_access_is_recorded_with_time_address_and_a_truncated_user_agent(client):
    citizen = create_citizen()
    document = create_document(citizen)
    login(client, citizen)
    agent = "Mozilla/5.0 " + "x" * 500

    client.get(f"/documents/{document.id}", headers={"User-Agent": agent})
    client.get(f"/documents/{document.id}/content", headers={"User-Agent": agent})
    post(client, f"/documents/{document.id}/hide", headers={"User-Agent": agent})
    post(client, f"/documents/{document.id}/unhide", headers={"User-Agent": agent})

    events = db.session.query(DocumentAccessEvent).order_by(DocumentAccessEvent.id).all()
    assert [event.action for event in events] == ["opened", "downloaded", "hidden", "unhidden"]
    assert all(event.citizen_id == citizen.id for event in events)
    assert all(event.ip_address == "127.0.0.1" for event in events)
    assert all(event.user_agent == agent[:300] for event in events)
    assert all(utcnow() - event.occurred_at < timedelta(minutes=1) for event in events)


def test_the_history_page_shows_the_citizens_own_events_newest_first_in_plain_words(client):
    citizen, other = create_citizen(), create_citizen()
    document = create_document(citizen, title="Tax letter")
    create_document(other, title="Other letter")
    login(client, other)
    client.get("/")
    login(client, citizen)
    client.get(f"/documents/{document.id}")
    client.get(f"/documents/{document.id}/content")

    html = client.get("/history").get_data(as_text=True)
    assert html.index("You downloaded the PDF") < html.index("You opened the document")
    assert "Tax letter" in html and "Other letter" not in html


def test_the_history_hides_the_title_of_a_document_that_is_gone(client):
    citizen = create_citizen()
    document = create_document(citizen, title="Expired letter")
    login(client, citizen)
    client.get(f"/documents/{document.id}")
    document.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    html = client.get("/history").get_data(as_text=True)
    assert "You opened the document" in html
    assert "Expired letter" not in html and "no longer available" in html


def test_the_address_comes_from_the_proxy_header_only_when_a_proxy_is_trusted(
    client, _migrated_app, instance_path, database_url
):
    citizen = create_citizen()
    document = create_document(citizen)
    forged = {"X-Forwarded-For": "203.0.113.7"}
    login(client, citizen)
    client.get(f"/documents/{document.id}", headers=forged)

    behind_nginx = create_app(
        make_settings(instance_path, database_url, trusted_proxies=1), TESTING=True
    ).test_client()
    login(behind_nginx, citizen)
    behind_nginx.get(f"/documents/{document.id}", headers=forged)

    events = db.session.query(DocumentAccessEvent).order_by(DocumentAccessEvent.id).all()
    assert [event.ip_address for event in events] == ["127.0.0.1", "203.0.113.7"]
