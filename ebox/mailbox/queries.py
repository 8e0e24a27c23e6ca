"""Reads of the mailbox: the citizen's documents, their senders and the access history.

A document is shown only while it is available: not deleted and not past its expiry. The
expiry is checked here, at read time, so an expired document disappears before the purge job
has removed it.

The inbox's reads cost the same for a mailbox of 50 documents or of 100,000 (decision 0015):
each one walks a partial index of migration 0009 and stops after a page, after COUNT_LIMIT
documents, or after one entry per sender; the list reads only the columns it shows.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Row,
    ScalarSelect,
    Select,
    bindparam,
    func,
    null,
    select,
    text,
)
from sqlalchemy.orm import joinedload

from ebox.accounts.models import Citizen
from ebox.extensions import db
from ebox.mailbox.models import Attachment, Document, DocumentAccessEvent
from ebox.senders.models import Sender

T = TypeVar("T")

MAX_SEARCH_LENGTH = 200
# Lists are counted exactly up to here, and beyond only known to hold more: counting all of
# a mailbox of 100,000 documents would cost more than the rest of the page together.
COUNT_LIMIT = 1000


@dataclass(frozen=True)
class Scope:
    """Which documents of a mailbox the reader may see: all of them (the owner), or a trusted
    person's share: chosen senders only (sender_ids), registered mail only if allowed."""

    sender_ids: tuple[int, ...] | None = None  # None: every sender
    registered: bool = True

    def allows(self, document: Document) -> bool:
        if self.sender_ids is not None and document.sender_id not in self.sender_ids:
            return False
        return self.registered or not document.is_registered


EVERYTHING = Scope()


@dataclass(frozen=True)
class _Limits:
    """A Scope's shape, for the statements built once each (parameter: scope_senders)."""

    by_senders: bool = False
    without_registered: bool = False

    @classmethod
    def of(cls, scope: Scope) -> _Limits:
        return cls(by_senders=scope.sender_ids is not None, without_registered=not scope.registered)


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


@dataclass(frozen=True)
class InboxRow:
    """One line of the inbox: what it shows of a document, and nothing more."""

    id: uuid.UUID
    title: str | None
    sender_name: str
    published_at: datetime
    expires_at: datetime
    read_at: datetime | None
    hidden_at: datetime | None
    is_registered: bool

    @classmethod
    def of(cls, document: Document) -> InboxRow:
        return cls(
            id=document.id,
            title=document.title,
            sender_name=document.sender.name,
            published_at=document.published_at,
            expires_at=document.expires_at,
            read_at=document.read_at,
            hidden_at=document.hidden_at,
            is_registered=document.is_registered,
        )


@dataclass(frozen=True)
class InboxPage:
    """A page of the inbox. total is exact up to COUNT_LIMIT; above, the list holds more."""

    items: Sequence[InboxRow]
    number: int
    size: int
    total: int
    # Unread documents of the main list, counted up to COUNT_LIMIT + 1 (None: not counted).
    unread: int | None
    has_next: bool

    @property
    def is_total_known(self) -> bool:
        return self.total <= COUNT_LIMIT

    @property
    def count(self) -> int | None:
        """How many pages, when the total is known."""
        return _page_count(self.total, self.size) if self.is_total_known else None

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def escape_like(text: str) -> str:
    """Make LIKE wildcards in the citizen's search literal (used with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The inbox's statements are built once for each shape of filter and kept, the citizen, the
# moment and the other values coming as parameters: SQLAlchemy spends about as long building
# one of these statements as running it.


def _available(limits: _Limits = _Limits()) -> list[ColumnElement[bool]]:
    """The citizen's documents that are shown (parameters: number, now), within the reader's
    limits (scope_senders)."""
    conditions = [
        Document.recipient_national_number == bindparam("number"),
        Document.deleted_at.is_(None),
        Document.expires_at > bindparam("now"),
    ]
    if limits.by_senders:
        conditions.append(Document.sender_id.in_(bindparam("scope_senders", expanding=True)))
    if limits.without_registered:
        conditions.append(Document.is_registered.is_(False))
    return conditions


@dataclass(frozen=True)
class _Shape:
    """Which filters a list has, whatever their values (parameters: sender_id, pattern)."""

    show_hidden: bool
    unread_only: bool
    by_sender: bool
    searching: bool
    limits: _Limits = _Limits()

    @classmethod
    def of(cls, wanted: InboxFilter, scope: Scope = EVERYTHING) -> _Shape:
        return cls(
            show_hidden=wanted.show_hidden,
            unread_only=wanted.unread_only,
            by_sender=wanted.sender_id is not None,
            searching=bool(wanted.search),
            limits=_Limits.of(scope),
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = _available(self.limits)
        hidden = Document.hidden_at
        conditions.append(hidden.is_not(None) if self.show_hidden else hidden.is_(None))
        if self.unread_only:
            conditions.append(Document.read_at.is_(None))
        if self.by_sender:
            conditions.append(Document.sender_id == bindparam("sender_id"))
        if self.searching:
            conditions.append(Document.title.ilike(bindparam("pattern"), escape="\\"))
        return conditions


def _parameters(
    citizen: Citizen, wanted: InboxFilter, now: datetime, scope: Scope
) -> dict[str, Any]:
    pattern = f"%{escape_like(wanted.search[:MAX_SEARCH_LENGTH])}%"
    return {
        "number": citizen.national_number,
        "now": now,
        "sender_id": wanted.sender_id,
        "pattern": pattern,
        "count_limit": COUNT_LIMIT + 1,
        **_scope_parameters(scope),
    }


def _scope_parameters(scope: Scope) -> dict[str, Any]:
    return {} if scope.sender_ids is None else {"scope_senders": list(scope.sender_ids)}


def _page_count(total: int, size: int) -> int:
    return max(1, math.ceil(total / size))


def _paged(query: Select[Any], number: int, size: int) -> Page[Any]:
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    count = _page_count(total or 0, size)
    number = min(max(1, number), count)
    items = db.session.scalars(query.limit(size).offset((number - 1) * size)).unique().all()
    return Page(items=items, number=number, count=count, total=total or 0)


def inbox_page(
    citizen: Citizen,
    wanted: InboxFilter,
    *,
    now: datetime,
    size: int,
    scope: Scope = EVERYTHING,
) -> InboxPage:
    """One page of the citizen's available documents within scope, newest first, with the count
    of the list and, for the whole main list, of its unread documents: one statement for a
    usual page."""
    shape = _Shape.of(wanted, scope)
    if shape.searching:
        _plan_for_the_words_searched()
    counts_unread = not shape.show_hidden and not wanted.is_narrowed
    statement = _page_statement(shape, counts_unread=counts_unread)
    parameters = _parameters(citizen, wanted, now, scope)
    number = max(1, wanted.page)
    rows = _page_rows(statement, parameters, number=number, size=size)
    if not rows and number > 1:
        # Past the end: the whole count, once, to find the last page (a rare, typed address).
        number = _page_count(_count_all(shape, parameters), size)
        rows = _page_rows(statement, parameters, number=number, size=size)
    first = rows[0] if rows else None
    return InboxPage(
        items=[InboxRow(*row[: len(_ROW_COLUMNS)]) for row in rows[:size]],
        number=number,
        size=size,
        total=first.total if first else 0,
        unread=(first.unread if first else 0) if counts_unread else None,
        has_next=len(rows) > size,
    )


def _plan_for_the_words_searched() -> None:
    """Plan this transaction's statements for their own values (PostgreSQL).

    psycopg prepares a statement run five times on a connection, and PostgreSQL may then keep
    one generic plan for every value. For a search, that plan cannot know whether the words
    are rare, which the trigram index finds at once, or frequent, which the newest documents
    show first; a plan made for the citizen's words chooses right each time.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _page_rows(
    statement: Select[*tuple[Any, ...]], parameters: dict[str, Any], *, number: int, size: int
) -> Sequence[Row[*tuple[Any, ...]]]:
    paging = {"limit": size + 1, "offset": (number - 1) * size}
    return db.session.execute(statement, {**parameters, **paging}).all()


# In the order of InboxRow's fields.
_ROW_COLUMNS = (
    Document.id,
    Document.title,
    Sender.name.label("sender_name"),
    Document.published_at,
    Document.expires_at,
    Document.read_at,
    Document.hidden_at,
    Document.is_registered,
)


@functools.cache
def _page_statement(shape: _Shape, *, counts_unread: bool) -> Select[*tuple[Any, ...]]:
    """A page's rows and one more (is there a next page?), each carrying the counts.

    The ids come from the index alone; only those rows are then read in full. The counts are
    uncorrelated subqueries: PostgreSQL computes each once, not once a row."""
    conditions = shape.conditions()
    page = (
        select(Document.id, Document.published_at)
        .where(*conditions)
        .order_by(Document.published_at.desc(), Document.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    unread = [*_available(shape.limits), Document.read_at.is_(None), Document.hidden_at.is_(None)]
    counts = (
        _counted(conditions).label("total"),
        (_counted(unread) if counts_unread else null()).label("unread"),
    )
    return (
        select(*_ROW_COLUMNS, *counts)
        .join(page, page.c.id == Document.id)
        .join(Sender, Sender.id == Document.sender_id)
        .order_by(page.c.published_at.desc(), page.c.id.desc())
    )


def _counted(conditions: list[ColumnElement[bool]]) -> ScalarSelect[int]:
    """Documents matching conditions, counted up to count_limit."""
    matching = select(Document.id).where(*conditions).limit(bindparam("count_limit"))
    return select(func.count()).select_from(matching.subquery()).scalar_subquery()


def _count_all(shape: _Shape, parameters: dict[str, Any]) -> int:
    query = select(func.count()).select_from(Document).where(*shape.conditions())
    return db.session.scalar(query, parameters) or 0


def has_documents(citizen: Citizen, *, now: datetime, scope: Scope = EVERYTHING) -> bool:
    """Whether the citizen has any available document within scope, in the main list or in the
    archive."""
    first = select(Document.id).where(*_available(_Limits.of(scope))).limit(1)
    parameters = {"number": citizen.national_number, "now": now, **_scope_parameters(scope)}
    return db.session.scalar(first, parameters) is not None


def senders_of(
    citizen: Citizen, *, now: datetime, scope: Scope = EVERYTHING
) -> list[tuple[int, str]]:
    """(id, name) of each sender of an available document of the citizen within scope."""
    parameters = {"number": citizen.national_number, "now": now, **_scope_parameters(scope)}
    statement = _senders_statement(_Limits.of(scope))
    return [(row.id, row.name) for row in db.session.execute(statement, parameters)]


@functools.cache
def _senders_statement(limits: _Limits) -> Select[*tuple[Any, ...]]:
    """A DISTINCT would read every document of the mailbox. Instead each step asks the index
    (recipient, sender) for the first sender after the last one found, so the work grows
    with the number of senders (a few dozen at most), not with the documents."""
    found = select(_next_sender(limits, after=None).label("sender_id")).cte("found", recursive=True)
    following = select(_next_sender(limits, after=found.c.sender_id))
    found = found.union_all(following.where(found.c.sender_id.is_not(None)))
    return (
        select(Sender.id, Sender.name)
        .join(found, found.c.sender_id == Sender.id)
        .order_by(Sender.name, Sender.id)
    )


def _next_sender(limits: _Limits, *, after: ColumnElement[int] | None) -> ScalarSelect[int]:
    # ORDER BY ... LIMIT 1 rather than min(): a prepared statement's generic plan may compute
    # min() by reading every entry of the citizen, never this way.
    query = select(Document.sender_id).where(*_available(limits))
    if after is not None:
        query = query.where(Document.sender_id > after)
    return query.order_by(Document.sender_id).limit(1).scalar_subquery()


def find_document(document_id: uuid.UUID) -> Document | None:
    """Any document by id, whoever it belongs to: the caller checks that it is the citizen's.
    Its sender and message type come in the same statement (every page of it shows them)."""
    loaded = [joinedload(Document.sender), joinedload(Document.message_type)]
    return db.session.get(Document, document_id, options=loaded)


def find_attachment(document: Document, position: int) -> Attachment | None:
    """The document's attachment at this position (1 for the first), if it has one."""
    return db.session.scalars(
        select(Attachment).where(
            Attachment.document_id == document.id, Attachment.position == position
        )
    ).first()


def access_history(citizen: Citizen, *, number: int, size: int) -> Page[DocumentAccessEvent]:
    """The accesses to the citizen's documents, by the citizen or a trusted person, newest
    first, with their documents."""
    query = (
        select(DocumentAccessEvent)
        .where(DocumentAccessEvent.citizen_id == citizen.id)
        .options(
            joinedload(DocumentAccessEvent.document),
            joinedload(DocumentAccessEvent.representative),
        )
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
