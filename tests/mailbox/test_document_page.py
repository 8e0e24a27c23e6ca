"""The document page, the PDF (inline and download) and registered mail's confirmation."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import DocumentAccessEvent
from ebox.mailbox.views import download_name
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    create_sender,
    login,
)
from tests.mailbox.mailbox_helpers import post


def actions_of(document) -> list[str]:
    events = db.session.query(DocumentAccessEvent).filter_by(document_id=document.id)
    return [event.action for event in events.order_by(DocumentAccessEvent.id)]


def test_the_document_page_shows_the_sender_its_contact_details_and_the_dates(client):
    citizen = create_citizen(language="en")
    sender = create_sender(
        name="Federal Pension Service",
        contact_email="help@pensions.example",
        contact_phone="+32 78 15 17 65",
        contact_url="https://pensions.example/contact",
        contact_address="Zuidertoren, 1060 Brussels",
    )
    message_type = create_message_type(sender, name_en="Pension statement", name_nl="Pensioen")
    document = create_document(citizen, message_type=message_type, title="Your pension 2026")
    login(client, citizen)

    html = client.get(f"/documents/{document.id}").get_data(as_text=True)
    for expected in (
        "Your pension 2026",
        "Federal Pension Service",
        "help@pensions.example",
        "+32 78 15 17 65",
        "https://pensions.example/contact",
        "Zuidertoren, 1060 Brussels",
        "Pension statement",
        "Will be deleted on",
        "statement.pdf",
        "You cannot reply in eBox.",
    ):
        assert expected in html, expected
    assert "Open the PDF" in html
    # Nothing fetches the content until the citizen asks for it.
    assert f"/documents/{document.id}/content?disposition=inline" in html  # the link
    assert "<iframe" not in html
    assert "Show the PDF on this page" in html


def _actions(document) -> list[str]:
    events = db.session.scalars(
        select(DocumentAccessEvent.action)
        .where(DocumentAccessEvent.document_id == document.id)
        .order_by(DocumentAccessEvent.id)
    )
    return list(events)


def test_the_pdf_is_shown_on_the_page_only_when_the_citizen_asks(client):
    citizen = create_citizen()
    document = create_document(citizen)
    login(client, citizen)

    client.get(f"/documents/{document.id}")
    assert _actions(document) == ["opened"]

    # Without JavaScript: the page again, with the frame.
    html = client.get(f"/documents/{document.id}?view=pdf").get_data(as_text=True)
    assert f'<iframe id="pdf" class="pdf-frame" src="/documents/{document.id}/content?disp' in html
    assert _actions(document) == ["opened", "opened"]


def test_htmx_fetches_only_the_frame_and_records_no_second_opening(client):
    citizen = create_citizen()
    document = create_document(citizen)
    login(client, citizen)
    client.get(f"/documents/{document.id}")

    response = client.get(f"/documents/{document.id}?view=pdf", headers={"HX-Request": "true"})

    assert response.get_data(as_text=True).startswith('<iframe id="pdf"')
    assert _actions(document) == ["opened"]


def test_a_closed_registered_letter_offers_no_frame_even_when_asked(client):
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    login(client, citizen)

    response = client.get(f"/documents/{document.id}?view=pdf", headers={"HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert "Open and confirm receipt" in html and "<iframe" not in html


def test_the_body_text_is_shown_escaped(client):
    citizen = create_citizen()
    document = create_document(citizen)
    document.body_text = "<script>alert(1)</script> Dear citizen"
    db.session.commit()
    login(client, citizen)

    html = client.get(f"/documents/{document.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Dear citizen" in html
    assert "<script>alert(1)" not in html


def test_opening_the_document_page_marks_it_read_once(client):
    citizen = create_citizen()
    document = create_document(citizen)
    login(client, citizen)

    assert client.get(f"/documents/{document.id}").status_code == 200
    db.session.refresh(document)
    first_read_at = document.read_at
    assert first_read_at is not None
    assert client.get(f"/documents/{document.id}").status_code == 200
    db.session.refresh(document)
    assert document.read_at == first_read_at
    assert actions_of(document) == ["opened", "opened"]


def test_the_download_is_the_published_pdf_with_safe_headers(client):
    citizen = create_citizen()
    content = make_pdf("Annual statement", ["Line one", "Line two"])
    document = create_document(citizen, content=content, file_name="statement-2026.pdf")
    login(client, citizen)

    response = client.get(f"/documents/{document.id}/content")
    assert response.status_code == 200
    assert response.data == content
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=statement-2026.pdf"
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert actions_of(document) == ["downloaded"]


def test_a_non_ascii_file_name_is_sent_rfc_5987_encoded(client):
    citizen = create_citizen()
    document = create_document(citizen, file_name="Bescheid_Überweisung_€.pdf")
    login(client, citizen)

    disposition = client.get(f"/documents/{document.id}/content").headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''" + quote("Bescheid_Überweisung_€.pdf") in disposition
    assert 'filename="Bescheid_Uberweisung_.pdf"' in disposition or (
        "filename=Bescheid_Uberweisung_.pdf" in disposition
    )


def test_file_names_lose_paths_quotes_and_control_characters():
    assert download_name('../../etc/pass"wd\r\n.pdf') == "pass_wd__.pdf"
    assert download_name("C:\\Users\\x\\letter.pdf") == "letter.pdf"
    assert download_name("") == "document.pdf"
    assert download_name(None) == "document.pdf"
    long_name = download_name("a" * 300 + ".pdf")
    assert len(long_name) == 150 and long_name.endswith(".pdf")


def test_the_inline_view_serves_the_pdf_inline(client):
    citizen = create_citizen()
    content = make_pdf("Inline")
    document = create_document(citizen, content=content)
    login(client, citizen)

    response = client.get(f"/documents/{document.id}/content?disposition=inline")
    assert response.status_code == 200 and response.data == content
    assert response.headers["Content-Disposition"] == "inline; filename=statement.pdf"
    assert response.headers["Content-Type"] == "application/pdf"
    assert actions_of(document) == ["viewed_inline"]


def test_content_that_is_not_a_pdf_is_only_ever_downloaded_as_opaque_bytes(client):
    citizen = create_citizen()
    document = create_document(citizen)
    document.media_type = "text/html"
    db.session.commit()
    login(client, citizen)

    response = client.get(f"/documents/{document.id}/content?disposition=inline")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_a_registered_document_stays_closed_until_the_citizen_confirms_receipt(client):
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    login(client, citizen)

    html = client.get(f"/documents/{document.id}").get_data(as_text=True)
    assert "records a proof of receipt" in html and "Open and confirm receipt" in html
    assert "/content" not in html
    db.session.refresh(document)
    assert document.read_at is None
    for url in (
        f"/documents/{document.id}/content",
        f"/documents/{document.id}/content?disposition=inline",
    ):
        refused = client.get(url)
        assert refused.status_code == 403
        assert "Confirm receipt first" in refused.get_data(as_text=True)

    confirmed = post(client, f"/documents/{document.id}/receipt")
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"].endswith(f"/documents/{document.id}")
    db.session.refresh(document)
    assert document.read_at is not None
    assert client.get(f"/documents/{document.id}/content").status_code == 200
    assert actions_of(document) == ["opened", "receipt_confirmed", "downloaded"]


def test_confirming_receipt_twice_keeps_the_first_time(client):
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    login(client, citizen)

    post(client, f"/documents/{document.id}/receipt")
    db.session.refresh(document)
    first = document.read_at
    post(client, f"/documents/{document.id}/receipt")
    db.session.refresh(document)
    assert document.read_at == first
    assert actions_of(document).count("receipt_confirmed") == 1
