"""PostgreSQL: the same MessageID published twice at the same moment. The second INSERT waits for
the first transaction, then finds its document: the same message gets the first one's id, another
is refused; either way the second's stored object is removed at once."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, replace

import pytest
from flask import Flask

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox import publication
from ebox.mailbox.publication import Publication, PublicationRefused, Published
from ebox.senders.models import MessageType
from ebox.storage.services import list_storage_keys
from tests.factories import create_message_type, next_national_number

pytestmark = pytest.mark.postgres_only

PDF = make_pdf("Twins", ["Published twice at once"])


def _publication(message_type_id: int, recipient: str, title: str) -> Publication:
    message_type = db.session.get(MessageType, message_type_id)
    assert message_type is not None
    return Publication(
        sender=message_type.sender,
        message_type=message_type,
        recipient_national_number=recipient,
        ticket="TWIN-1",
        sequence=None,
        title=title,
        language="en",
        file_name="twin.pdf",
        media_type="application/pdf",
    )


@dataclass(frozen=True)
class Outcome:
    document_id: uuid.UUID
    storage_key: str | None
    is_new: bool


def _outcome(published: Published) -> Outcome:
    document = published.document
    return Outcome(document.id, document.storage_key, published.is_new)


def publish_twins(app: Flask, second_title: str) -> tuple[Outcome, Outcome | Exception]:
    message_type = create_message_type()
    db.session.commit()
    recipient, type_id = next_national_number(), message_type.id
    first_inserted, second_started = threading.Event(), threading.Event()
    outcomes: dict[str, Outcome | Exception] = {}

    def first() -> None:
        with app.app_context():
            published = publication.publish(_publication(type_id, recipient, "Twins"), PDF)
            outcomes["first"] = _outcome(published)
            first_inserted.set()
            second_started.wait(5)
            time.sleep(0.3)  # the second's INSERT is waiting on us meanwhile
            db.session.commit()

    def second() -> None:
        with app.app_context():
            first_inserted.wait(5)
            second_started.set()
            try:
                published = publication.publish(_publication(type_id, recipient, second_title), PDF)
                outcomes["second"] = _outcome(published)
                db.session.commit()
            except PublicationRefused as refused:
                db.session.rollback()
                outcomes["second"] = refused

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first_outcome = outcomes["first"]
    assert isinstance(first_outcome, Outcome)
    return first_outcome, outcomes["second"]


def test_a_twin_of_the_same_message_gets_the_first_ones_id(app: Flask) -> None:
    before = set(list_storage_keys())

    first, second = publish_twins(app, "Twins")

    assert isinstance(second, Outcome) and not second.is_new and first.is_new
    assert second.document_id == first.document_id
    assert set(list_storage_keys()) - before == {first.storage_key}


def test_a_twin_of_another_message_is_refused(app: Flask) -> None:
    before = set(list_storage_keys())

    first, second = publish_twins(app, "Another title")

    assert isinstance(second, PublicationRefused)
    assert second.code == publication.DUPLICATE_MESSAGE_ID
    assert set(list_storage_keys()) - before == {first.storage_key}


def test_a_retry_after_the_first_committed_stores_nothing_lasting(app: Flask) -> None:
    message_type = create_message_type()
    db.session.commit()
    submitted = replace(
        _publication(message_type.id, next_national_number(), "Retry"), ticket="RETRY-1"
    )
    with app.test_request_context():
        first = publication.publish(submitted, PDF)
        db.session.commit()
    before = set(list_storage_keys())

    with app.test_request_context():
        again = publication.publish(submitted, PDF)

    assert not again.is_new and again.document.id == first.document.id
    assert again.recipient_is_activated is None  # the INSERT did not happen to tell it
    assert set(list_storage_keys()) == before
