"""create_* helpers with keyword defaults. They go through the real services where one exists."""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from flask.testing import FlaskClient

from ebox import national_number
from ebox.accounts.models import Citizen, WebSession
from ebox.db_types import utcnow
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.publication import Publication, SubmittedAttachment, publish
from ebox.senders.models import MessageType, Sender

_numbers = itertools.count(1)


def next_national_number() -> str:
    """A fresh valid national number (born 1985-07-30, serial counting up)."""
    return national_number.make(f"850730{next(_numbers) % 1000:03d}")


def create_sender(**fields: object) -> Sender:
    n = next(_numbers)
    values: dict[str, object] = {
        "name": f"Test Institution {n}",
        "enterprise_number": f"{n:010d}",
        "contact_email": "contact@institution.example",
        "contact_phone": "+32 2 000 00 00",
        "contact_url": "https://institution.example/contact",
        "contact_address": "Rue de la Loi 1, 1000 Brussels",
    }
    values.update(fields)
    sender = Sender(**values)
    db.session.add(sender)
    db.session.flush()
    return sender


def create_message_type(sender: Sender | None = None, **fields: object) -> MessageType:
    sender = sender or create_sender()
    values: dict[str, object] = {
        "code": f"TYPE{next(_numbers)}",
        "name_nl": "Bericht",
        "name_fr": "Message",
        "name_de": "Nachricht",
        "name_en": "Message",
        "validity_days": 60,
    }
    values.update(fields)
    message_type = MessageType(sender_id=sender.id, **values)
    db.session.add(message_type)
    db.session.flush()
    return message_type


def create_citizen(activated: bool = True, **fields: object) -> Citizen:
    values: dict[str, object] = {
        "national_number": next_national_number(),
        "given_name": "Jan",
        "surname": "Peeters",
        "language": "en",
    }
    if activated:
        values.update(
            email="jan.peeters@example.org",
            email_confirmed_at=utcnow(),
            conditions_accepted_at=utcnow(),
        )
    values.update(fields)
    citizen = Citizen(**values)
    db.session.add(citizen)
    db.session.flush()
    return citizen


def create_document(
    recipient: Citizen | str,
    *,
    message_type: MessageType | None = None,
    title: str = "Your annual statement",
    content: bytes | None = None,
    ticket: str | None = None,
    sequence: int | None = None,
    expires_at: datetime | None = None,
    is_registered: bool = False,
    file_name: str = "statement.pdf",
    language: str = "en",
    attachments: Sequence[SubmittedAttachment] = (),
    commit: bool = True,
) -> Document:
    """Publish a document through publish(), as the SOAP service and the REST API will."""
    message_type = message_type or create_message_type()
    number = recipient if isinstance(recipient, str) else recipient.national_number
    publication = Publication(
        sender=message_type.sender,
        message_type=message_type,
        recipient_national_number=number,
        ticket=ticket or f"T{next(_numbers)}",
        sequence=sequence,
        title=title,
        language=language,
        file_name=file_name,
        media_type="application/pdf",
        expires_at=expires_at or utcnow() + timedelta(days=30),
        is_registered=is_registered,
    )
    content = content or make_pdf(title, ["Test document"])
    document = publish(publication, content, attachments).document
    if commit:
        db.session.commit()
    return document


def make_png(width: int = 2, height: int = 2) -> bytes:
    """A small, valid grey PNG image (an attachment's content)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def login(client: FlaskClient, citizen: Citizen) -> WebSession:
    """Log citizen in without the SAML round trip (that has tests of its own)."""
    web_session = WebSession(citizen_id=citizen.id)
    db.session.add(web_session)
    db.session.commit()
    with client.session_transaction() as session:
        session["sid"] = str(web_session.id)
    return web_session


def a_publication(ticket: str = "T-1", **fields: object) -> Publication:
    """What a new sender submits for a new citizen (its content apart): a Publication whose
    fields a test may change."""
    message_type = create_message_type()
    values: dict[str, object] = {
        "sender": message_type.sender,
        "message_type": message_type,
        "recipient_national_number": next_national_number(),
        "ticket": ticket,
        "sequence": None,
        "title": "Title",
        "language": "en",
        "file_name": "a.pdf",
        "media_type": "application/pdf",
    }
    values.update(fields)
    return Publication(**values)  # type: ignore[arg-type]
