"""A message with attachments: the rules each one meets, a refusal that stores nothing, and a
retry of the same MessageID that must repeat them exactly."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from ebox import transactions
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Attachment, Document
from ebox.mailbox.publication import (
    Digest,
    Publication,
    PublicationRefused,
    SubmittedAttachment,
    publish,
)
from ebox.storage.services import list_storage_keys, open_content
from tests import factories
from tests.factories import make_png

CSV = b"year;amount\n2026;1234.56\n"


def pdf_attachment(name: str = "annex.pdf") -> SubmittedAttachment:
    return SubmittedAttachment(name, "application/pdf", make_pdf("Annex", ["Details"]))


def png_attachment(name: str = "plan.png") -> SubmittedAttachment:
    return SubmittedAttachment(name, "image/png", make_png())


def a_publication(ticket: str = "ATT-1") -> Publication:
    return factories.a_publication(ticket, title="Decision with annexes", file_name="decision.pdf")


def stored_rows() -> tuple[int, int]:
    documents = db.session.scalar(select(func.count()).select_from(Document))
    attachments = db.session.scalar(select(func.count()).select_from(Attachment))
    return documents or 0, attachments or 0


def test_each_attachment_is_stored_encrypted_in_order_with_its_digest(app: Flask) -> None:
    csv = SubmittedAttachment(
        "amounts.csv",
        "text/csv; charset=utf-8",
        CSV,
        Digest("SHA-256", hashlib.sha256(CSV).digest()),
    )
    attachments = [pdf_attachment(), png_attachment(), csv]
    published = publish(a_publication(), make_pdf("Decision"), attachments=attachments)
    db.session.commit()
    db.session.expire_all()

    document = db.session.get(Document, published.document.id)
    assert document is not None
    stored = document.attachments
    assert [row.position for row in stored] == [1, 2, 3]
    assert [row.file_name for row in stored] == ["annex.pdf", "plan.png", "amounts.csv"]
    assert [row.media_type for row in stored] == ["application/pdf", "image/png", "text/csv"]
    for row, submitted in zip(stored, attachments, strict=True):
        assert row.sha256 == hashlib.sha256(submitted.content).hexdigest()
        assert row.size_bytes == len(submitted.content)
        assert row.storage_key not in (None, document.storage_key)
        assert row.content_key != document.content_key  # a key of its own
        assert row.storage_key and row.content_key and row.content_key_id
        with open_content(
            storage_key=row.storage_key,
            content_key=row.content_key,
            content_key_id=row.content_key_id,
        ) as content:
            assert content.read() == submitted.content


@pytest.mark.parametrize(
    ("attachments", "code"),
    [
        ([png_attachment(f"p{n}.png") for n in range(11)], "TOO_MANY_ATTACHMENTS"),
        ([SubmittedAttachment("page.html", "text/html", b"<p>hi</p>")], "ATTACHMENT_TYPE_REFUSED"),
        ([SubmittedAttachment("x.png", "image/png", make_pdf("x"))], "ATTACHMENT_TYPE_REFUSED"),
        (
            [SubmittedAttachment("x.pdf", "application/pdf", b"%PDF-1.7 x")],
            "ATTACHMENT_TYPE_REFUSED",
        ),
        ([SubmittedAttachment("x.csv", "text/csv", b"\xff\xfe\x00b")], "ATTACHMENT_TYPE_REFUSED"),
        ([SubmittedAttachment("x.jpg", "image/jpeg", make_png())], "ATTACHMENT_TYPE_REFUSED"),
        ([SubmittedAttachment("../etc/x.png", "image/png", make_png())], "INVALID_FIELD"),
        ([SubmittedAttachment("a\\b.png", "image/png", make_png())], "INVALID_FIELD"),
        ([SubmittedAttachment("evil\u202egnp.exe", "image/png", make_png())], "INVALID_FIELD"),
        ([SubmittedAttachment("a\nb.png", "image/png", make_png())], "INVALID_FIELD"),
        ([SubmittedAttachment("", "image/png", make_png())], "INVALID_FIELD"),
        ([SubmittedAttachment("n" * 256, "image/png", make_png())], "INVALID_FIELD"),
        (
            [SubmittedAttachment("x.png", "image/png", make_png(), Digest("SHA-256", b"0" * 32))],
            "DIGEST_MISMATCH",
        ),
    ],
)
def test_a_refused_attachment_refuses_the_message_and_stores_nothing(
    app: Flask, attachments: list[SubmittedAttachment], code: str
) -> None:
    before = set(list_storage_keys())
    with pytest.raises(PublicationRefused) as refused:
        publish(a_publication(), make_pdf("Decision"), attachments=[pdf_attachment(), *attachments])
    assert refused.value.code == code
    db.session.commit()
    assert stored_rows() == (0, 0)
    assert set(list_storage_keys()) == before


def test_ten_attachments_are_accepted(app: Flask) -> None:
    attachments = [png_attachment(f"plan-{n}.png") for n in range(10)]
    publish(a_publication(), make_pdf("Decision"), attachments=attachments)
    assert stored_rows() == (1, 10)


def test_each_attachment_and_the_whole_message_have_their_size_limits(app: Flask) -> None:
    settings = app.config["EBOX"]
    main = make_pdf("Decision")
    big = SubmittedAttachment("big.txt", "text/plain", b"a" * (settings.max_document_bytes + 1))
    with pytest.raises(PublicationRefused) as refused:
        publish(a_publication("BIG"), main, attachments=[big])
    assert refused.value.code == "DOCUMENT_TOO_LARGE"

    share = settings.max_document_bytes
    count = settings.max_message_bytes // share + 1  # each within its limit, together above
    parts = [SubmittedAttachment(f"{n}.txt", "text/plain", b"a" * share) for n in range(count)]
    with pytest.raises(PublicationRefused) as refused:
        publish(a_publication("TOTAL"), main, attachments=parts)
    assert refused.value.code == "MESSAGE_TOO_LARGE"
    assert stored_rows() == (0, 0)


def test_a_retry_repeating_the_attachments_returns_the_message(app: Flask) -> None:
    publication, main = a_publication(), make_pdf("Decision")
    first = publish(publication, main, attachments=[pdf_attachment(), png_attachment()])
    db.session.commit()
    objects = set(list_storage_keys())

    again = publish(publication, main, attachments=[pdf_attachment(), png_attachment()])
    assert not again.is_new and again.document.id == first.document.id
    db.session.commit()
    assert stored_rows() == (1, 2)
    assert set(list_storage_keys()) == objects  # the retry's copies are not kept


@pytest.mark.parametrize(
    "changed",
    [
        [],  # none, where the first had two
        [pdf_attachment()],
        [png_attachment(), pdf_attachment()],  # another order
        [pdf_attachment("other-name.pdf"), png_attachment()],
        [pdf_attachment(), SubmittedAttachment("plan.png", "image/png", make_png(3, 3))],
    ],
)
def test_a_retry_with_other_attachments_is_a_duplicate_message_id(
    app: Flask, changed: list[SubmittedAttachment]
) -> None:
    publication, main = a_publication(), make_pdf("Decision")
    publish(publication, main, attachments=[pdf_attachment(), png_attachment()])
    db.session.commit()
    with pytest.raises(PublicationRefused) as refused:
        publish(publication, main, attachments=changed)
    assert refused.value.code == "DUPLICATE_MESSAGE_ID"


def test_a_message_without_attachments_refuses_a_retry_that_adds_some(app: Flask) -> None:
    publication, main = a_publication(), make_pdf("Decision")
    publish(publication, main)
    db.session.commit()
    with pytest.raises(PublicationRefused) as refused:
        publish(replace(publication), main, attachments=[png_attachment()])
    assert refused.value.code == "DUPLICATE_MESSAGE_ID"
    assert publish(publication, main).is_new is False


def test_a_rolled_back_message_leaves_none_of_its_objects(app: Flask) -> None:
    before = set(list_storage_keys())
    with app.test_request_context():
        publish(a_publication(), make_pdf("Decision"), attachments=[png_attachment()] * 2)
        assert len(set(list_storage_keys()) - before) == 3
        transactions.rollback()
    assert set(list_storage_keys()) == before
    assert stored_rows() == (0, 0)


def test_a_message_without_attachments_never_reads_nor_writes_the_attachments_table(
    app: Flask,
) -> None:
    """Publication is benchmarked: a single document costs what it cost before."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        publish(replace(a_publication(), is_registered=True), make_pdf("Decision"))
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert any("INSERT INTO evidence" in statement for statement in statements)
    assert not [statement for statement in statements if "attachments" in statement]
