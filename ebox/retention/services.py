"""Deleting documents at the expiry their sender chose.

A document is deleted in two committed steps. First its row is reduced to the minimal record
(ids, dates, digest, status): title, body, file name and the wrapped content key are erased and
deleted_at is set, which makes the content unreadable at once (the key that opens it is gone);
its attachments' names and keys go in the same transaction. The storage key stays as a marker
that the objects are still to be removed. Then the objects (the document's and its attachments')
are removed, the attachments' rows deleted and the markers cleared. A crash in between leaves
markers that the next run finishes first; an object that no row names at all (a crash while
publishing) is found by the orphan pass, which knows the attachments' objects too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, delete, func, select, tuple_, update

from ebox import metrics, transactions
from ebox.db_types import utcnow
from ebox.events.models import MESSAGE_DELETED
from ebox.events.services import record_events_from
from ebox.evidence.services import NOT_RETRIEVED, record_evidence
from ebox.evidence.timestamp import TimestampError
from ebox.evidence.xml import CLOCK_SKEW, CONTENT_HANDOVER_FAILURE
from ebox.extensions import db
from ebox.mailbox.models import Attachment, Document
from ebox.storage.services import delete_content, delete_contents, list_storage_keys, stored_at

log = logging.getLogger(__name__)
SelectT = TypeVar("SelectT", bound=Select)

PURGE_BATCH = 500
# An object younger than this may belong to a publication whose transaction is still open.
ORPHAN_GRACE = timedelta(hours=1)
ORPHAN_PAGE = 1000


class PurgeInTheFuture(ValueError):
    """A purge asked to run at a time that has not come yet."""


@dataclass
class PurgeSummary:
    documents: int = 0
    objects_removed: int = 0
    # Registered documents left for the next run: their non-retrieval could not be sealed.
    postponed: int = 0


def purge_expired(
    now: datetime | None = None,
    *,
    batch_size: int = PURGE_BATCH,
    progress: Callable[[PurgeSummary], None] | None = None,
) -> PurgeSummary:
    """Delete every document expired at now, batch by batch. Safe to run again at any time.

    now may replay a past moment, never a future one: PurgeInTheFuture, and nothing is done.
    """
    now = _moment_not_in_the_future(now)
    summary = PurgeSummary()
    summary.objects_removed += _remove_counted(batch_size)
    sealing_down = False
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        batch = _next_expired(now, after, batch_size, skip_unopened_registered=sealing_down)
        if not batch:
            break
        after = batch[-1]
        expired = [document_id for _, document_id in batch]
        unsealed = _seal_non_retrieval(expired)
        if unsealed:
            sealing_down = True
            expired = [document_id for document_id in expired if document_id not in unsealed]
        _reduce_to_minimal_records(expired, now)
        # Through ebox.transactions: the sealed non-retrieval evidence asks for its proof then.
        transactions.commit()
        summary.documents += len(expired)
        metrics.count_purge(documents=len(expired))
        summary.objects_removed += _remove_counted(batch_size)
        if progress:
            progress(summary)
    if sealing_down:
        summary.postponed = _count_expired_unopened_registered(now)
        log.warning(
            "purge: %d unopened registered documents kept for the next run: their "
            "non-retrieval evidence could not be sealed",
            summary.postponed,
        )
    if summary.documents:
        log.info(
            "purge: %d expired documents deleted, %d objects removed",
            summary.documents,
            summary.objects_removed,
        )
    return summary


def _next_expired(
    now: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    batch_size: int,
    *,
    skip_unopened_registered: bool,
) -> list[tuple[datetime, uuid.UUID]]:
    """The next batch of expired documents, in (expires_at, id) order after the last one seen.

    Continuing after the last key, rather than from the start of the index, matters while
    another transaction stays open: the entries of rows already reduced cannot be cleaned up
    then, and every batch would walk past all of them again.
    """
    candidates = select(Document.expires_at, Document.id).where(
        Document.deleted_at.is_(None), Document.expires_at <= now
    )
    if after is not None:
        candidates = candidates.where(tuple_(Document.expires_at, Document.id) > after)
    if skip_unopened_registered:
        # The timestamp authority failed once this run: leave every unopened registered
        # document for the next run instead of waiting on the authority for each.
        candidates = candidates.where(_not_unopened_registered())
    query = candidates.order_by(Document.expires_at, Document.id).limit(batch_size)
    return [(row.expires_at, row.id) for row in db.session.execute(_locked(query))]


def _reduce_to_minimal_records(document_ids: list[uuid.UUID], now: datetime) -> None:
    """Erase all but the minimal record; the wrapped content key goes, so the content is
    unreadable at once. The storage key stays as the marker of an object still to remove. Their
    senders' events are written by the same transaction, in one statement."""
    record_events_from(
        select(Document.sender_id, Document.id).where(Document.id.in_(document_ids)),
        type=MESSAGE_DELETED,
        at=now,
    )
    db.session.execute(
        update(Document)
        .where(Document.id.in_(document_ids))
        .values(
            deleted_at=now,
            title=None,
            body_text=None,
            file_name=None,
            content_key=None,
            content_key_id=None,
        )
    )
    db.session.execute(
        update(Attachment)
        .where(Attachment.document_id.in_(document_ids))
        .values(file_name=None, content_key=None, content_key_id=None)
    )


def _moment_not_in_the_future(moment: datetime | None) -> datetime:
    """The purge's moment, at the latest the current time. A later one would delete documents
    still within their period and seal non-retrieval evidence of an expiry yet to come; within
    CLOCK_SKEW it is taken as now (a time typed to the second, or another host's clock)."""
    now = utcnow()
    if moment is None:
        return now
    if moment > now + CLOCK_SKEW:
        raise PurgeInTheFuture(
            f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z is in the future (it is now "
            f"{now:%Y-%m-%dT%H:%M:%S}Z): no document is deleted before its expiry, so nothing "
            "was done"
        )
    return min(moment, now)


def _seal_non_retrieval(document_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Registered documents never opened: the evidence of it is sealed before the content goes,
    in the same transaction. Returns those whose evidence could not be sealed (the timestamp
    authority down): they must keep their content until it can."""
    unopened = db.session.scalars(
        select(Document).where(
            Document.id.in_(document_ids),
            Document.is_registered.is_(True),
            Document.read_at.is_(None),
        )
    ).all()
    for position, document in enumerate(unopened):
        try:
            record_evidence(
                document, CONTENT_HANDOVER_FAILURE, at=document.expires_at, reason=NOT_RETRIEVED
            )
        except TimestampError as error:
            log.warning("non-retrieval of %s not sealed yet: %s", document.id, error)
            # Not asked again for the others: each try may wait for the full timeout.
            return {later.id for later in unopened[position:]}
    return set()


def _not_unopened_registered() -> ColumnElement[bool]:
    return ~(Document.is_registered.is_(True) & Document.read_at.is_(None))


def _count_expired_unopened_registered(now: datetime) -> int:
    return int(
        db.session.scalar(
            select(func.count(Document.id)).where(
                Document.deleted_at.is_(None),
                Document.expires_at <= now,
                ~_not_unopened_registered(),
            )
        )
        or 0
    )


def _remove_marked_objects(batch_size: int) -> int:
    """Remove the objects of deleted documents whose storage key is still set, in id order
    after the last one seen (see _next_expired)."""
    removed = 0
    after: uuid.UUID | None = None
    while True:
        query = select(Document.id, Document.storage_key).where(
            Document.deleted_at.is_not(None), Document.storage_key.is_not(None)
        )
        if after is not None:
            query = query.where(Document.id > after)
        marked = db.session.execute(_locked(query.order_by(Document.id).limit(batch_size))).all()
        if not marked:
            return removed
        after = marked[-1].id
        document_ids = [document_id for document_id, _ in marked]
        attached = _attachment_objects(document_ids)
        # Idempotent: a missing object is fine (a run killed here removes them again).
        delete_contents([str(storage_key) for _, storage_key in marked] + attached)
        db.session.execute(delete(Attachment).where(Attachment.document_id.in_(document_ids)))
        db.session.execute(
            update(Document).where(Document.id.in_(document_ids)).values(storage_key=None)
        )
        transactions.commit()
        removed += len(marked) + len(attached)


def _attachment_objects(document_ids: list[uuid.UUID]) -> list[str]:
    """The stored objects of these deleted documents' attachments."""
    return [
        str(storage_key)
        for storage_key in db.session.scalars(
            select(Attachment.storage_key).where(
                Attachment.document_id.in_(document_ids), Attachment.storage_key.is_not(None)
            )
        )
    ]


def _remove_counted(batch_size: int) -> int:
    removed = _remove_marked_objects(batch_size)
    metrics.count_purge(objects=removed)
    return removed


def remove_orphan_objects(now: datetime | None = None) -> int:
    """Remove stored objects that no document names and that are older than ORPHAN_GRACE."""
    now = now or utcnow()
    removed = 0
    for page in _pages(list_storage_keys(), ORPHAN_PAGE):
        known = set(
            db.session.scalars(
                select(Document.storage_key)
                .where(Document.storage_key.in_(page))
                .union_all(select(Attachment.storage_key).where(Attachment.storage_key.in_(page)))
            )
        )
        db.session.rollback()  # read only; keep no transaction open while listing the store
        for key in page:
            if key in known:
                continue
            created = stored_at(key)
            if created is not None and created <= now - ORPHAN_GRACE:
                delete_content(key)
                metrics.count_purge(objects=1)
                removed += 1
    if removed:
        log.warning("purge: %d stored objects without a document removed", removed)
    return removed


def _locked(query: SelectT) -> SelectT:
    """Several workers purge side by side: each takes rows the others have not locked."""
    if db.engine.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _pages(keys: Iterator[str], size: int) -> Iterator[list[str]]:
    page: list[str] = []
    for key in keys:
        page.append(key)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page
