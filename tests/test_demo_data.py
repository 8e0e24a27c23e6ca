from sqlalchemy import func, select

from ebox.accounts.models import Citizen
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import Sender


def counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Sender, Citizen, Document)
    )


def test_demo_data_creates_senders_citizens_and_documents_once(runner):
    first = runner.invoke(args=["ebox", "demo-data"])
    assert first.exit_code == 0, first.output
    after_first = counts()
    assert after_first[0] >= 2 and after_first[1] >= 4 and after_first[2] >= 20

    second = runner.invoke(args=["ebox", "demo-data"])
    assert second.exit_code == 0
    assert "0 new documents" in second.output
    assert counts() == after_first


def test_demo_documents_are_real_pdfs(runner):
    from ebox.storage.services import open_content

    runner.invoke(args=["ebox", "demo-data"])
    document = db.session.scalars(select(Document)).first()
    content = open_content(
        storage_key=document.storage_key,
        content_key=document.content_key,
        content_key_id=document.content_key_id,
    ).read()
    assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")


def test_a_demo_registered_letter_opened_gets_its_proof(runner):
    from ebox.evidence.jobs import make_proof
    from ebox.evidence.services import chain_of
    from ebox.mailbox.services import confirm_receipt

    assert runner.invoke(args=["ebox", "demo-data"]).exit_code == 0
    letter = db.session.scalars(select(Document).where(Document.is_registered)).first()
    assert letter is not None
    assert chain_of(letter.id)[0].event_at == letter.published_at  # back-dated, and sealed so
    confirm_receipt(document=letter)
    db.session.commit()

    assert make_proof(str(letter.id)) == 1  # the chain reads as one message


def test_the_demo_decision_on_family_allowance_has_two_attachments(runner):
    from ebox.mailbox.models import Attachment

    runner.invoke(args=["ebox", "demo-data"])
    documents = db.session.scalars(
        select(Document).where(Document.sender_ticket.startswith("DEMO-0002-"))
    ).all()
    assert len(documents) == 4  # one for each demo citizen
    for document in documents:
        assert [(a.file_name, a.media_type) for a in document.attachments] == [
            ("calculation.pdf", "application/pdf"),
            ("payments.csv", "text/csv"),
        ]
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 8
