"""The publication rules the EboxMessage service relies on, at the service level: what counts as
a PDF, what an expiration date means, and that a publication is whole or absent."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask import Flask

from ebox import transactions
from ebox.demo.pdf import make_pdf
from ebox.mailbox.publication import (
    PublicationRefused,
    end_of_day,
    expiration_day,
    is_pdf,
    publish_document,
)
from ebox.storage.services import list_storage_keys
from tests.factories import a_publication


def test_a_pdf_needs_both_the_header_and_a_readable_structure() -> None:
    pdf = make_pdf("Title", ["line"])
    assert is_pdf(pdf)
    assert not is_pdf(b"%PDF-1.7\n" + b"x" * 200)
    assert not is_pdf(pdf[: len(pdf) // 2])
    assert not is_pdf(b" " + pdf)
    assert not is_pdf(b"")


@pytest.mark.parametrize(
    ("day", "expires_utc"),
    [
        (date(2027, 1, 15), datetime(2027, 1, 15, 23, 0, tzinfo=UTC)),  # winter: UTC+1
        (date(2027, 7, 15), datetime(2027, 7, 15, 22, 0, tzinfo=UTC)),  # summer: UTC+2
        (date(2027, 3, 27), datetime(2027, 3, 27, 23, 0, tzinfo=UTC)),  # night of the change
    ],
)
def test_an_expiration_date_ends_at_the_next_midnight_in_brussels(
    day: date, expires_utc: datetime
) -> None:
    assert end_of_day(day) == expires_utc
    assert expiration_day(expires_utc) == day


def test_a_rolled_back_publication_leaves_no_stored_object(app: Flask) -> None:
    before = set(list_storage_keys())
    with app.test_request_context():
        document = publish_document(a_publication("ROLLBACK"), make_pdf("x"))
        assert document.storage_key in set(list_storage_keys())
        transactions.rollback()
    assert set(list_storage_keys()) == before


def test_a_refused_publication_stores_nothing(app: Flask) -> None:
    before = set(list_storage_keys())
    with app.test_request_context(), pytest.raises(PublicationRefused) as refused:
        publish_document(a_publication("NOPDF"), b"%PDF-1.4 not a pdf")
    assert refused.value.code == "NOT_A_PDF"
    assert set(list_storage_keys()) == before
