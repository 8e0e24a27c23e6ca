"""Reads of the mailbox: the citizen's documents, their senders and the access history.

A document is shown only while it is available: not deleted and not past its expiry. The
expiry is checked here, at read time, so an expired document disappears before the purge job
has removed it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import joinedload

from ebox.accounts.models import Citizen
from ebox.extensions import db
from ebox.mailbox.models import Document, DocumentAccessEvent
from ebox.senders.models import Sender

T = TypeVar("T")

MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True)
class InboxFilter:
    """What the citizen asked to see. The defaults show the whole main list."""

    unread_only: bool = False
    sender_id: int | None = None
    search: str = ""
    show_hidden: bool = False
    page: int = 1

    @property
    def is_narrowed(self) -> bool:
        """True when a filter hides documents of the chosen list (not counting paging)."""
        return self.unread_only or self.sender_id is not None or bool(self.search)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int
    count: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.count


def escape_like(text: str) -> str:
    """Make LIKE wildcards in the citizen's search literal (used with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _available_to(citizen: Citizen, now: datetime) -> list[ColumnElement[bool]]:
    return [
        Document.recipient_national_number == citizen.national_number,
        Document.deleted_at.is_(None),
        Document.expires_at > now,
    ]


def _filtered(citizen: Citizen, wanted: InboxFilter, now: datetime) -> Select[Any]:
    conditions = _available_to(citizen, now)
    conditions.append(
        Document.hidden_at.is_not(None) if wanted.show_hidden else Document.hidden_at.is_(None)
    )
    if wanted.unread_only:
        conditions.append(Document.read_at.is_(None))
    if wanted.sender_id is not None:
        conditions.append(Document.sender_id == wanted.sender_id)
    if wanted.search:
        pattern = f"%{escape_like(wanted.search[:MAX_SEARCH_LENGTH])}%"
        conditions.append(Document.title.ilike(pattern, escape="\\"))
    return select(Document).where(*conditions)


def _paged(query: Select[Any], number: int, size: int) -> Page[Any]:
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    count = max(1, math.ceil((total or 0) / size))
    number = min(max(1, number), count)
    items = db.session.scalars(query.limit(size).offset((number - 1) * size)).unique().all()
    return Page(items=items, number=number, count=count, total=total or 0)


def inbox_page(
    citizen: Citizen, wanted: InboxFilter, *, now: datetime, size: int
) -> Page[Document]:
    """One page of the citizen's available documents, newest first."""
    query = (
        _filtered(citizen, wanted, now)
        .options(joinedload(Document.sender))
        .order_by(Document.published_at.desc(), Document.id.desc())
    )
    return _paged(query, wanted.page, size)


def count_available(citizen: Citizen, *, now: datetime) -> int:
    """Every available document of the citizen, in the main list and in the archive."""
    query = select(func.count()).select_from(Document).where(*_available_to(citizen, now))
    return db.session.scalar(query) or 0


def count_unread(citizen: Citizen, *, now: datetime) -> int:
    """Unread documents in the main list: the number the citizen cares about."""
    conditions = [*_available_to(citizen, now), Document.read_at.is_(None)]
    conditions.append(Document.hidden_at.is_(None))
    return db.session.scalar(select(func.count()).select_from(Document).where(*conditions)) or 0


def senders_of(citizen: Citizen, *, now: datetime) -> list[tuple[int, str]]:
    """(id, name) of each sender of an available document of the citizen, by name."""
    query = (
        select(Sender.id, Sender.name)
        .join(Document, Document.sender_id == Sender.id)
        .where(*_available_to(citizen, now))
        .distinct()
        .order_by(Sender.name, Sender.id)
    )
    return [(row.id, row.name) for row in db.session.execute(query)]


def find_document(document_id: uuid.UUID) -> Document | None:
    """Any document by id, whoever it belongs to: the caller checks that it is the citizen's."""
    return db.session.get(Document, document_id)


def access_history(citizen: Citizen, *, number: int, size: int) -> Page[DocumentAccessEvent]:
    """The citizen's own access events, newest first, with their documents."""
    query = (
        select(DocumentAccessEvent)
        .where(DocumentAccessEvent.citizen_id == citizen.id)
        .options(joinedload(DocumentAccessEvent.document))
        .order_by(DocumentAccessEvent.occurred_at.desc(), DocumentAccessEvent.id.desc())
    )
    return _paged(query, number, size)


def recipient_status(national_numbers: list[str]) -> dict[str, Citizen]:
    """The citizens among these normalised national numbers, by number (hasAnEbox)."""
    if not national_numbers:
        return {}
    citizens = db.session.scalars(
        select(Citizen).where(Citizen.national_number.in_(national_numbers))
    )
    return {citizen.national_number: citizen for citizen in citizens}
