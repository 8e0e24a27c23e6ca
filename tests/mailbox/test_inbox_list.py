"""The inbox: only the citizen's available documents, newest first, with filters and pages."""

from __future__ import annotations

from datetime import timedelta

from ebox.db_types import utcnow
from ebox.extensions import db
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    create_sender,
    login,
)
from tests.mailbox.mailbox_helpers import HTMX, inbox, publish_in_order, titles_on


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/?q=tax")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_the_inbox_lists_only_the_citizens_own_documents_newest_first(client):
    citizen, other = create_citizen(), create_citizen()
    publish_in_order(citizen, ["Oldest letter", "Middle letter", "Newest letter"])
    create_document(other, title="Somebody else's letter")
    login(client, citizen)

    assert titles_on(inbox(client)) == ["Newest letter", "Middle letter", "Oldest letter"]


def test_unread_documents_are_marked_new_with_a_label_not_only_a_colour(client):
    citizen = create_citizen()
    unread, read = publish_in_order(citizen, ["Unread letter", "Read letter"])
    read.read_at = utcnow()
    db.session.commit()
    login(client, citizen)

    html = inbox(client)
    unread_row = html.split(f'id="document-{unread.id}"')[1].split("</li>")[0]
    read_row = html.split(f'id="document-{read.id}"')[1].split("</li>")[0]
    assert "badge--new" in unread_row and ">New<" in unread_row
    assert f'<li id="document-{unread.id}" class="document document--new">' in html
    assert f'<li id="document-{read.id}" class="document">' in html
    assert "badge--new" not in read_row


def test_each_row_shows_sender_dates_and_the_registered_mail_mark(client):
    citizen = create_citizen()
    sender = create_sender(name="Federal Pension Service")
    create_document(
        citizen, message_type=create_message_type(sender), title="Registered", is_registered=True
    )
    login(client, citizen)

    html = inbox(client)
    assert "Federal Pension Service" in html
    assert "Received" in html and "Deleted on" in html
    assert "Registered mail" in html


def test_expired_and_deleted_documents_are_never_shown_even_before_the_purge(client):
    citizen = create_citizen()
    expired, deleted, _ = publish_in_order(citizen, ["Expired", "Deleted", "Still here"])
    expired.expires_at = utcnow() - timedelta(seconds=1)
    deleted.deleted_at = utcnow()
    db.session.commit()
    login(client, citizen)

    assert titles_on(inbox(client)) == ["Still here"]
    assert titles_on(inbox(client, "?show=archive")) == []


def test_the_unread_filter_shows_only_unread_documents(client):
    citizen = create_citizen()
    _, read = publish_in_order(citizen, ["Unread letter", "Read letter"])
    read.read_at = utcnow()
    db.session.commit()
    login(client, citizen)

    assert titles_on(inbox(client, "?unread=y")) == ["Unread letter"]


def test_the_sender_filter_offers_and_applies_the_citizens_senders(client):
    citizen = create_citizen()
    pensions = create_message_type(create_sender(name="Pensions"))
    family = create_message_type(create_sender(name="Family allowances"))
    stranger = create_sender(name="Never wrote to you")
    create_document(citizen, message_type=pensions, title="Pension letter")
    create_document(citizen, message_type=family, title="Family letter")
    login(client, citizen)

    html = inbox(client)
    assert ">Pensions</option>" in html and ">Family allowances</option>" in html
    assert stranger.name not in html
    assert titles_on(inbox(client, f"?sender={pensions.sender_id}")) == ["Pension letter"]


def test_a_hostile_sender_value_is_ignored_rather_than_failing(client):
    citizen = create_citizen()
    create_document(citizen, title="A letter")
    login(client, citizen)

    assert titles_on(inbox(client, "?sender=1%27%20OR%201=1&show=nonsense&page=-3")) == ["A letter"]


def test_search_in_titles_ignores_case_and_takes_wildcards_literally(client):
    citizen = create_citizen()
    publish_in_order(
        citizen,
        ["Tax return 2026", "Discount of 50% granted", "Discount of 500 euro", "file_a", "fileXa"],
    )
    login(client, citizen)

    assert titles_on(inbox(client, "?q=TAX")) == ["Tax return 2026"]
    assert titles_on(inbox(client, "?q=50%25")) == ["Discount of 50% granted"]
    assert titles_on(inbox(client, "?q=file_a")) == ["file_a"]
    assert titles_on(inbox(client, "?q=%00%25")) == ["Discount of 50% granted"]


def test_a_search_without_results_explains_it_in_plain_words(client):
    citizen = create_citizen()
    create_document(citizen, title="A letter")
    login(client, citizen)

    html = inbox(client, "?q=nothing-like-this")
    assert "No document matches these filters." in html
    assert "Clear the filters" in html


def test_an_empty_inbox_explains_what_will_appear_there(client):
    login(client, create_citizen())
    assert "Your eBox is empty for now." in inbox(client)


def test_the_inbox_is_paged_with_previous_and_next_links(client, small_pages):
    citizen = create_citizen()
    publish_in_order(citizen, ["One", "Two", "Three", "Four", "Five"])
    login(client, citizen)

    first = inbox(client)
    assert titles_on(first) == ["Five", "Four"]
    assert "Page 1 of 3" in first and 'rel="next" href="/?page=2"' in first
    assert 'rel="prev"' not in first
    last = inbox(client, "?page=3")
    assert titles_on(last) == ["One"] and "Page 3 of 3" in last
    assert 'rel="prev" href="/?page=2"' in last and 'rel="next"' not in last
    assert titles_on(inbox(client, "?page=99")) == ["One"]


def test_paging_links_keep_the_filters(client, small_pages):
    citizen = create_citizen()
    publish_in_order(citizen, ["Tax 1", "Tax 2", "Tax 3", "Other"])
    login(client, citizen)

    html = inbox(client, "?q=tax&unread=y")
    assert titles_on(html) == ["Tax 3", "Tax 2"]
    assert 'href="/?page=2&amp;q=tax&amp;unread=y"' in html


def test_hidden_documents_leave_the_inbox_for_the_archive(client):
    citizen = create_citizen()
    hidden, _ = publish_in_order(citizen, ["Archived letter", "Inbox letter"])
    hidden.hidden_at = utcnow()
    db.session.commit()
    login(client, citizen)

    assert titles_on(inbox(client)) == ["Inbox letter"]
    assert titles_on(inbox(client, "?show=archive")) == ["Archived letter"]


def test_htmx_gets_only_the_list_fragment_and_a_browser_the_whole_page(client):
    citizen = create_citizen()
    create_document(citizen, title="A letter")
    login(client, citizen)

    page = inbox(client, "?q=letter")
    fragment = inbox(client, "?q=letter", headers=HTMX)
    assert page.startswith("<!doctype html>") and 'id="document-list"' in page
    assert "<html" not in fragment and '<form class="filters' not in fragment
    assert titles_on(fragment) == ["A letter"]
    assert client.get("/", headers=HTMX).headers["Vary"].count("HX-Request") == 1


def test_htmx_restoring_a_page_missing_from_its_history_cache_gets_the_whole_page(client):
    citizen = create_citizen()
    login(client, citizen)

    restore = {**HTMX, "HX-History-Restore-Request": "true"}
    assert inbox(client, headers=restore).startswith("<!doctype html>")


def test_the_filter_form_works_with_htmx_and_without(client):
    citizen = create_citizen()
    create_document(citizen, title="A letter")
    login(client, citizen)

    html = inbox(client)
    form = html.split('<form class="filters')[1].split(">")[0]
    assert 'method="get"' in form and 'action="/"' in form
    assert 'hx-get="/"' in form and 'hx-target="#document-list"' in form
    assert 'hx-push-url="true"' in form
