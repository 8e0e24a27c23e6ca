"""Master key rotation: re-wrap every document's data key under another master key.

Attachments (ebox.mailbox.attachments) hold data keys exactly like documents: every step here
walks the attachments table after the documents table, the same way.

A document's data key is 32 bytes wrapped by a master key (ebox.storage.crypto); its row holds
the 40 wrapped bytes and the master key's id. Rotating re-wraps those bytes under the new
master key: the stored objects are never read or written, so a rotation of millions of
documents moves a few hundred megabytes in the database and nothing in the store.

Batches follow the index on (content_key_id, id): each batch takes the next documents of one
old key in id order and commits on its own. A run that is killed loses at most its current
batch; the next run finds only the documents not re-wrapped yet. Each row is changed only if it
still holds the key that was read: a document deleted meanwhile (its key erased by the purge)
stays deleted.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ebox import transactions
from ebox.config import Settings, current_settings
from ebox.errors import ConfigError
from ebox.extensions import db
from ebox.mailbox.models import Attachment, Document
from ebox.storage import crypto
from ebox.storage.errors import StorageError
from ebox.storage.services import open_content

log = logging.getLogger(__name__)

ROTATION_BATCH = 1000
VERIFY_SAMPLE = 50
_documents = cast(sa.Table, Document.__table__)
_attachments = cast(sa.Table, Attachment.__table__)
_TABLES = (_documents, _attachments)

# The master key ids in use, from the index: one seek per id (a loose index scan), however
# many documents there are.
_KEY_IDS_IN_USE = sa.text(
    """
    WITH RECURSIVE used(key_id) AS (
        SELECT min(content_key_id) FROM documents WHERE content_key_id IS NOT NULL
        UNION ALL
        SELECT (
            SELECT min(d.content_key_id) FROM documents d
            WHERE d.content_key_id IS NOT NULL AND d.content_key_id > used.key_id
        )
        FROM used WHERE used.key_id IS NOT NULL
    )
    SELECT key_id FROM used WHERE key_id IS NOT NULL
    """
)
# Attachments are fewer by far: their index (ix_attachments_content_key) read once.
_ATTACHMENT_KEY_IDS_IN_USE = (
    sa.select(_attachments.c.content_key_id)
    .where(_attachments.c.content_key_id.is_not(None))
    .distinct()
)


class RotationError(Exception):
    """The rotation cannot start: the message says why; nothing was changed."""


@dataclass
class Failure:
    """A document whose key could not be re-wrapped or whose content did not decrypt."""

    document_id: uuid.UUID
    reason: str  # names keys and storage keys, never content


@dataclass
class RotationProgress:
    to: str
    total: int  # documents under other keys when the run started
    rewrapped: int = 0
    skipped: int = 0  # changed by someone else meanwhile (deleted by the purge)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class VerifyReport:
    key_id: str
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)


def key_ids_in_use(connection: Connection, *, with_attachments: bool = True) -> list[str]:
    """The master key ids that documents' (and attachments') keys are wrapped by, sorted."""
    used = set(connection.execute(_KEY_IDS_IN_USE).scalars())
    if with_attachments:
        used.update(connection.execute(_ATTACHMENT_KEY_IDS_IN_USE).scalars())
    return sorted(used)


def documents_by_key_id() -> dict[str, int]:
    """How many documents and attachments each master key id wraps (deleted ones have none)."""
    counts: dict[str, int] = {}
    for table in _TABLES:
        rows = db.session.execute(
            sa.select(table.c.content_key_id, sa.func.count())
            .where(table.c.content_key_id.is_not(None))
            .group_by(table.c.content_key_id)
        )
        for key_id, count in rows:
            counts[key_id] = counts.get(key_id, 0) + count
    return counts


def missing_master_keys(settings: Settings, connection: Connection) -> list[str]:
    """The master key ids documents still need that the settings do not configure."""
    ring = settings.master_key_ring()
    # Before migration 0018 there is no attachments table yet.
    with_attachments = sa.inspect(connection).has_table("attachments")
    used = key_ids_in_use(connection, with_attachments=with_attachments)
    return [key_id for key_id in used if key_id not in ring]


def check_documents_keys_configured(settings: Settings) -> None:
    """Raise ConfigError if a document still needs a master key that is not configured: the
    service must not start and fail on every such document. A database that does not answer
    (or has no documents table yet) is not a refusal: the check is then skipped with a warning."""
    engine = sa.create_engine(settings.database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("documents"):
                return
            missing = missing_master_keys(settings, connection)
    except sa.exc.OperationalError as error:
        log.warning(
            "could not check that every document's master key is configured: %s",
            error.orig.__class__.__name__ if error.orig else error.__class__.__name__,
        )
        return
    finally:
        engine.dispose()
    if missing:
        names = ", ".join(repr(key_id) for key_id in missing)
        raise ConfigError(
            f"documents are still wrapped by master key {names}, which is not configured: put "
            "it back in EBOX_MASTER_KEYS, rotate with `flask --app app ebox keys rotate --to "
            "ID`, and remove it only when `ebox keys status` shows no document needs it"
        )


def rotate(
    to: str,
    *,
    batch_size: int = ROTATION_BATCH,
    pause_seconds: float = 0.0,
    progress: Callable[[RotationProgress], None] | None = None,
) -> RotationProgress:
    """Re-wrap every document key not under master key `to`, one committed batch at a time.
    Safe to run again at any time, and after a kill: it goes on where it stopped."""
    ring = current_settings().master_key_ring()
    if to not in ring:
        raise RotationError(
            f"{to!r} is not a configured master key (they are "
            f"{', '.join(repr(key_id) for key_id in ring)}): add it to EBOX_MASTER_KEYS first"
        )
    sources = [key_id for key_id in key_ids_in_use(db.session.connection()) if key_id != to]
    unknown = [key_id for key_id in sources if key_id not in ring]
    if unknown:
        raise RotationError(
            f"documents are wrapped by master key {', '.join(map(repr, unknown))}, which is not "
            "configured: they cannot be unwrapped; add it to EBOX_MASTER_KEYS"
        )
    total = sum(
        db.session.scalar(sa.select(sa.func.count()).where(table.c.content_key_id.in_(sources)))
        or 0
        for table in _TABLES
    )
    state = RotationProgress(to=to, total=total)
    db.session.rollback()  # no transaction held between batches
    for table in _TABLES:
        for source in sources:
            after: uuid.UUID | None = None
            while batch := _next_batch(table, source, after, batch_size):
                after = batch[-1][0]
                _rewrap_batch(table, batch, source=source, ring=ring, state=state)
                transactions.commit()
                if progress:
                    progress(state)
                if pause_seconds:
                    time.sleep(pause_seconds)
    log.info(
        "key rotation to %r: %d document keys re-wrapped, %d changed meanwhile, %d failed",
        to,
        state.rewrapped,
        state.skipped,
        len(state.failures),
    )
    return state


def _next_batch(
    table: sa.Table, source: str, after: uuid.UUID | None, batch_size: int
) -> list[tuple[uuid.UUID, bytes]]:
    query = (
        sa.select(table.c.id, table.c.content_key)
        .where(table.c.content_key_id == source, table.c.content_key.is_not(None))
        .order_by(table.c.content_key_id, table.c.id)
        .limit(batch_size)
    )
    if after is not None:
        query = query.where(table.c.id > after)
    return [(row.id, row.content_key) for row in db.session.execute(query)]


def _rewrap_batch(
    table: sa.Table,
    batch: list[tuple[uuid.UUID, bytes]],
    *,
    source: str,
    ring: dict[str, str],
    state: RotationProgress,
) -> None:
    changes = []
    for document_id, wrapped in batch:
        try:
            data_key = crypto.unwrap_data_key(
                wrapped, master_key=ring[source], master_key_id=source
            )
        except StorageError as error:
            state.failures.append(Failure(document_id, str(error)))
            log.error("key rotation: %s %s: %s", table.name, document_id, error)
            continue
        changes.append(
            {
                "b_id": document_id,
                "b_old": wrapped,
                "b_new": crypto.wrap_data_key(data_key, master_key=ring[state.to]),
            }
        )
    if not changes:
        return
    statement = (
        table.update()
        .where(
            table.c.id == sa.bindparam("b_id"),
            table.c.content_key_id == source,
            table.c.content_key == sa.bindparam("b_old"),
        )
        .values(content_key=sa.bindparam("b_new"), content_key_id=state.to)
    )
    # One executemany; both drivers count the rows it changed (a row changed meanwhile is not).
    changed: int = db.session.execute(statement, changes).rowcount  # type: ignore[attr-defined]
    state.rewrapped += changed
    state.skipped += len(changes) - changed


def verify_sample(key_id: str, sample: int = VERIFY_SAMPLE) -> VerifyReport:
    """Open up to `sample` documents under `key_id`, spread over the id range, and as many
    attachments: each must unwrap, decrypt, authenticate and match its recorded SHA-256."""
    report = VerifyReport(key_id=key_id)
    rows = itertools.chain.from_iterable(_sample_rows(table, key_id, sample) for table in _TABLES)
    for row in rows:
        report.checked += 1
        try:
            with open_content(
                storage_key=row.storage_key,
                content_key=row.content_key,
                content_key_id=row.content_key_id,
            ) as content:
                digest = _sha256(content)
        except StorageError as error:
            report.failures.append(Failure(row.id, str(error)))
            continue
        if digest != row.sha256:
            report.failures.append(Failure(row.id, "the decrypted content has another SHA-256"))
    db.session.rollback()
    return report


def _sample_rows(table: sa.Table, key_id: str, sample: int) -> Iterator[sa.Row]:
    """Every document of the key when there are at most `sample`; else up to `sample` from
    random points of the id range (a random point can miss a document whose id follows
    another's closely, so a small set is read whole)."""
    first = db.session.execute(_sampled(table, key_id).limit(sample + 1)).all()
    if len(first) <= sample:
        yield from first
        return
    seen: set[uuid.UUID] = set()
    for _ in range(sample):
        row = _row_at_or_after(table, key_id, uuid.UUID(int=random.getrandbits(128)))
        if row is not None and row.id not in seen:
            seen.add(row.id)
            yield row


def _row_at_or_after(table: sa.Table, key_id: str, start: uuid.UUID) -> sa.Row | None:
    base = _sampled(table, key_id).limit(1)
    row = db.session.execute(base.where(table.c.id >= start)).first()
    return row if row is not None else db.session.execute(base).first()


def _sampled(table: sa.Table, key_id: str) -> sa.Select:
    """The rows of documents (or attachments) whose content can be opened with key_id; the
    purge erases the key of a deleted document's attachments with the document's."""
    columns = (table.c.id, table.c.storage_key, table.c.content_key, table.c.content_key_id)
    query = sa.select(*columns, table.c.sha256).where(
        table.c.content_key_id == key_id,
        table.c.content_key.is_not(None),
        table.c.storage_key.is_not(None),
    )
    if "deleted_at" in table.c:
        query = query.where(table.c.deleted_at.is_(None))
    return query.order_by(table.c.content_key_id, table.c.id)


def _sha256(content: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := content.read(crypto.CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()
