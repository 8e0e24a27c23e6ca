"""A large mailbox costs no more than a small one: counts stop at a limit, the senders come one
index entry each, every list reads its page from an index of its own (migration 0009), and the
htmx list skips what it does not show."""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask_babel import force_locale, format_date, gettext, refresh
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, event, text, update

from ebox import create_app
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.wording import line_labels
from tests.conftest import POSTGRES_SERVER, make_settings
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    create_sender,
    login,
)
from tests.mailbox.mailbox_helpers import HTMX, inbox, publish_in_order, titles_on

INBOX_INDEXES = {
    "ix_documents_inbox",
    "ix_documents_archive",
    "ix_documents_unread",
    "ix_documents_by_sender",
}


def summary_of(html: str) -> str:
    return " ".join(html.split('class="list-summary" role="status">')[1].split("</p>")[0].split())


def test_a_list_longer_than_the_count_limit_says_more_than_and_still_pages(
    client, small_pages, small_count_limit
):
    citizen = create_citizen()
    publish_in_order(citizen, ["One", "Two", "Three", "Four", "Five"])
    login(client, citizen)

    first = inbox(client)
    assert summary_of(first) == "More than 3 documents, more than 3 new"
    assert titles_on(first) == ["Five", "Four"]
    assert ">Page 1</span>" in first and 'rel="next" href="/?page=2"' in first
    last = inbox(client, "?page=3")
    assert titles_on(last) == ["One"] and ">Page 3</span>" in last and 'rel="next"' not in last
    assert titles_on(inbox(client, "?page=99")) == ["One"]


def test_every_list_says_more_than_beyond_the_count_limit(client, small_count_limit):
    citizen = create_citizen()
    publish_in_order(citizen, [f"Tax letter {n}" for n in range(5)])
    db.session.execute(update(Document).values(read_at=utcnow()))
    db.session.commit()
    login(client, citizen)

    assert summary_of(inbox(client)) == "More than 3 documents"
    assert summary_of(inbox(client, "?q=tax")) == "More than 3 documents match"
    db.session.execute(update(Document).values(hidden_at=utcnow()))
    db.session.commit()
    assert summary_of(inbox(client, "?show=archive")) == "More than 3 archived documents"


def test_a_list_within_the_count_limit_gives_its_exact_count_and_pages(client, small_pages):
    citizen = create_citizen()
    publish_in_order(citizen, ["One", "Two", "Three"])
    login(client, citizen)

    html = inbox(client)
    assert summary_of(html) == "3 documents, 3 new" and "Page 1 of 2" in html


def test_the_sender_filter_offers_each_sender_of_an_available_document_once_by_name(client):
    citizen = create_citizen()
    pensions = create_message_type(create_sender(name="Pensions"))
    allowances = create_message_type(create_sender(name="Allowances"))
    expired = create_message_type(create_sender(name="Expired only"))
    deleted = create_message_type(create_sender(name="Deleted only"))
    for title in ("Pension 1", "Pension 2", "Pension 3"):
        create_document(citizen, message_type=pensions, title=title)
    create_document(citizen, message_type=allowances, title="Allowance").hidden_at = utcnow()
    create_document(citizen, message_type=expired).expires_at = utcnow() - timedelta(seconds=1)
    create_document(citizen, message_type=deleted).deleted_at = utcnow()
    db.session.commit()
    login(client, citizen)

    offered = inbox(client).split('id="filter-sender"')[1].split("</select>")[0]
    assert re.findall(r"<option[^>]*>([^<]*)</option>", offered) == [
        "All senders",
        "Allowances",
        "Pensions",
    ]


def test_the_htmx_list_explains_an_empty_archive_and_an_empty_ebox(client):
    citizen = create_citizen()
    create_document(citizen, title="A letter")
    login(client, citizen)

    assert "Your archive is empty." in inbox(client, "?show=archive", headers=HTMX)
    login(client, create_citizen())
    assert "Your eBox is empty for now." in inbox(client, headers=HTMX)


def test_the_htmx_list_ignores_a_sender_the_citizen_never_heard_from(client):
    citizen = create_citizen()
    create_document(citizen, title="A letter")
    stranger = create_sender(name="Never wrote to you")
    login(client, citizen)

    assert titles_on(inbox(client, f"?sender={stranger.id}", headers=HTMX)) == ["A letter"]


def test_a_search_of_one_or_two_letters_still_finds_its_titles(client):
    citizen = create_citizen()
    publish_in_order(citizen, ["Tax return", "Pension", "Allowance"])
    login(client, citizen)

    assert titles_on(inbox(client, "?q=x")) == ["Tax return"]
    assert titles_on(inbox(client, "?q=ns")) == ["Pension"]


def test_each_citizen_reads_the_lines_in_their_own_language(client):
    dutch, french = create_citizen(language="nl"), create_citizen(language="fr")
    for citizen in (dutch, french):
        create_document(citizen, title="A letter")

    pages = {}
    for citizen in (dutch, french, dutch):
        login(client, citizen)
        pages[citizen.language] = inbox(client)
        refresh()  # the tests' requests share one application context, where Babel keeps the locale
    for language, html in pages.items():
        with force_locale(language):
            new, archive = gettext("New"), gettext("Move to the archive")
        assert f">{new}</span>" in html and f"{archive}<span" in html
    assert pages["nl"] != pages["fr"]


@pytest.mark.parametrize("language", ["nl", "fr", "de", "en"])
def test_dates_in_the_list_are_the_medium_dates_of_the_citizens_language(app, language):
    late_evening_utc = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # already the 29th in Brussels
    with app.test_request_context("/", headers={"Accept-Language": language}):
        labels = line_labels()
        for moment in (late_evening_utc, late_evening_utc + timedelta(days=200)):
            assert labels.day(moment) == format_date(moment, "medium")


# --- the plans: each list from its own index, read from the index alone --------------------


def statements_of(client, query: str) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, *_):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        inbox(client, query)
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    return seen


def plan_of(statement: str, parameters: object) -> str:
    """The plan PostgreSQL picks when reading the whole table is not an option (the tests'
    tables are tiny, so it would otherwise read them whole)."""
    with db.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        connection.rollback()
    return "\n".join(line for (line,) in rows)


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("", "Index Only Scan Backward using ix_documents_inbox"),
        ("?show=archive", "Index Only Scan Backward using ix_documents_archive"),
        ("?unread=y", "Index Only Scan Backward using ix_documents_unread"),
        ("?sender={sender}", "Index Only Scan Backward using ix_documents_by_sender"),
    ],
)
def test_each_list_reads_its_page_from_an_index_of_its_own(client, query, index):
    citizen = create_citizen()
    message_type = create_message_type()
    for title in ("First letter", "Second letter", "Third letter"):
        create_document(citizen, message_type=message_type, title=title)
    login(client, citizen)

    statements = statements_of(client, query.format(sender=message_type.sender_id))
    page = next(s for s in statements if "ORDER BY documents.published_at DESC" in s[0])
    assert index in plan_of(*page)


@pytest.mark.postgres_only
def test_the_senders_are_found_one_index_entry_each(client):
    citizen = create_citizen()
    create_document(citizen)
    login(client, citizen)

    senders = next(s for s in statements_of(client, "") if "WITH RECURSIVE" in s[0])
    plan = plan_of(*senders)
    assert "Index Only Scan using ix_documents_by_sender" in plan and "Limit" in plan


# --- the migration ----------------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request, worker_id) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp()) / 'ebox.sqlite3'}"
    name = f"ebox_test_migration_{worker_id}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    request.addfinalizer(lambda: _drop(admin, name))
    return POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}"


def _drop(admin, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.slow
def test_the_inbox_indexes_migration_goes_down_and_up_again(empty_database, instance_path):
    app = create_app(make_settings(instance_path, empty_database), TESTING=True)
    engine = create_engine(empty_database)

    def indexes() -> set[str]:
        listing = (
            "SELECT indexname FROM pg_indexes WHERE tablename = 'documents'"
            if engine.dialect.name == "postgresql"
            else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents'"
        )
        with engine.connect() as connection:
            return set(connection.scalars(text(listing)))

    with app.app_context():
        upgrade(revision="0009")
        assert indexes() >= INBOX_INDEXES
        downgrade(revision="0008")
        assert not INBOX_INDEXES & indexes()
        upgrade(revision="0009")
        assert indexes() >= INBOX_INDEXES
        db.engine.dispose()
    if engine.dialect.name == "postgresql":
        assert "ix_documents_title_search" in indexes()
    engine.dispose()
