"""Master key rotation: re-wrap every document's data key under another master key.

Attachments (ebox.mailbox.attachments) hold data keys exactly like documents, and webhook
subscriptions (ebox.webhooks) hold their signing secret wrapped the same way: every step here
walks the attachments table, then the subscriptions table, after the documents table, the same
way. Without that, removing a retired master key would leave deliveries unable to sign.

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
from ebox.storage.services import open_content, unwrap_content_key
from ebox.webhooks.models import WebhookSubscription

log = logging.getLogger(__name__)

ROTATION_BATCH = 1000
VERIFY_SAMPLE = 50


@dataclass(frozen=True)
class _Wrapped:
    """A table whose rows hold a key wrapped by a master key, next to that master key's id."""

    kind: str  # names a row in messages: "document", "attachment", "webhook subscription"
    table: sa.Table
    wrapped: sa.Column
    key_id: sa.Column


def _content(kind: str, table: sa.Table) -> _Wrapped:
    return _Wrapped(kind, table, table.c.content_key, table.c.content_key_id)


_DOCUMENTS = _content("document", cast(sa.Table, Document.__table__))
_ATTACHMENTS = _content("attachment", cast(sa.Table, Attachment.__table__))
_subscriptions = cast(sa.Table, WebhookSubscription.__table__)
_WEBHOOK_SECRETS = _Wrapped(
    "webhook subscription",
    _subscriptions,
    _subscriptions.c.secret_wrapped,
    _subscriptions.c.secret_key_id,
)
_CONTENTS = (_DOCUMENTS, _ATTACHMENTS)
_ALL = (*_CONTENTS, _WEBHOOK_SECRETS)

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


def _other_key_ids_in_use(wrapped: _Wrapped) -> sa.Select:
    """Attachments are fewer by far (their index, ix_attachments_content_key, is read once);
    subscriptions are at most a few per sender, a small table read whole."""
    return sa.select(wrapped.key_id).where(wrapped.key_id.is_not(None)).distinct()


class RotationError(Exception):
    """The rotation cannot start: the message says why; nothing was changed."""


@dataclass
class Failure:
    """A document whose key could not be re-wrapped or whose content did not decrypt."""

    document_id: uuid.UUID  # or the attachment's or subscription's id: see kind
    reason: str  # names keys and storage keys, never content nor secrets
    kind: str = "document"


@dataclass
class RotationProgress:
    to: str
    total: int  # keys (documents, attachments, webhook secrets) under other master keys at start
    rewrapped: int = 0
    secrets_rewrapped: int = 0  # of which webhook subscriptions' secrets
    skipped: int = 0  # changed by someone else meanwhile (deleted by the purge)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class VerifyReport:
    key_id: str
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)


def key_ids_in_use(connection: Connection, *, existing_only: bool = False) -> list[str]:
    """The master key ids that documents', attachments' and webhook secrets' keys are wrapped
    by, sorted. existing_only: skip the tables a database not fully migrated lacks yet."""
    used = set(connection.execute(_KEY_IDS_IN_USE).scalars())
    for wrapped in (_ATTACHMENTS, _WEBHOOK_SECRETS):
        if not existing_only or sa.inspect(connection).has_table(wrapped.table.name):
            used.update(connection.execute(_other_key_ids_in_use(wrapped)).scalars())
    return sorted(used)


def documents_by_key_id() -> dict[str, int]:
    """How many documents and attachments each master key id wraps (deleted ones have none)."""
    return _count_by_key_id(_CONTENTS)


def webhook_secrets_by_key_id() -> dict[str, int]:
    """How many webhook subscriptions' secrets each master key id wraps."""
    return _count_by_key_id((_WEBHOOK_SECRETS,))


def _count_by_key_id(tables: tuple[_Wrapped, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for wrapped in tables:
        rows = db.session.execute(
            sa.select(wrapped.key_id, sa.func.count())
            .where(wrapped.key_id.is_not(None))
            .group_by(wrapped.key_id)
        )
        for key_id, count in rows:
            counts[key_id] = counts.get(key_id, 0) + count
    return counts


def missing_master_keys(settings: Settings, connection: Connection) -> list[str]:
    """The master key ids documents or webhook secrets still need that the settings do not
    configure."""
    ring = settings.master_key_ring()
    used = key_ids_in_use(connection, existing_only=True)
    return [key_id for key_id in used if key_id not in ring]


def check_documents_keys_configured(settings: Settings) -> None:
    """Raise ConfigError if a document or webhook secret still needs a master key that is not
    configured: the service must not start and fail on every such document or delivery. A
    database that does not answer (or has no documents table yet) is not a refusal: the check
    is then skipped with a warning."""
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
            f"documents or webhook secrets are still wrapped by master key {names}, which is "
            "not configured: put "
            "it back in EBOX_MASTER_KEYS, rotate with `flask --app app ebox keys rotate --to "
            "ID`, and remove it only when `ebox keys status` shows no document nor webhook "
            "secret needs it"
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
        db.session.scalar(sa.select(sa.func.count()).where(wrapped.key_id.in_(sources))) or 0
        for wrapped in _ALL
    )
    state = RotationProgress(to=to, total=total)
    db.session.rollback()  # no transaction held between batches
    for wrapped in _ALL:
        for source in sources:
            after: uuid.UUID | None = None
            while batch := _next_batch(wrapped, source, after, batch_size):
                after = batch[-1][0]
                _rewrap_batch(wrapped, batch, source=source, ring=ring, state=state)
                transactions.commit()
                if progress:
                    progress(state)
                if pause_seconds:
                    time.sleep(pause_seconds)
    log.info(
        "key rotation to %r: %d keys re-wrapped (%d webhook secrets), %d changed meanwhile, "
        "%d failed",
        to,
        state.rewrapped,
        state.secrets_rewrapped,
        state.skipped,
        len(state.failures),
    )
    return state


def _next_batch(
    wrapped: _Wrapped, source: str, after: uuid.UUID | None, batch_size: int
) -> list[tuple[uuid.UUID, bytes]]:
    table = wrapped.table
    query = (
        sa.select(table.c.id, wrapped.wrapped)
        .where(wrapped.key_id == source, wrapped.wrapped.is_not(None))
        .order_by(wrapped.key_id, table.c.id)
        .limit(batch_size)
    )
    if after is not None:
        query = query.where(table.c.id > after)
    return [(row[0], row[1]) for row in db.session.execute(query)]


def _rewrap_batch(
    wrapped: _Wrapped,
    batch: list[tuple[uuid.UUID, bytes]],
    *,
    source: str,
    ring: dict[str, str],
    state: RotationProgress,
) -> None:
    changes = []
    for row_id, old in batch:
        try:
            data_key = crypto.unwrap_data_key(old, master_key=ring[source], master_key_id=source)
        except StorageError as error:
            state.failures.append(Failure(row_id, str(error), wrapped.kind))
            log.error("key rotation: %s %s: %s", wrapped.table.name, row_id, error)
            continue
        changes.append(
            {
                "b_id": row_id,
                "b_old": old,
                "b_new": crypto.wrap_data_key(data_key, master_key=ring[state.to]),
            }
        )
    if not changes:
        return
    table = wrapped.table
    statement = (
        table.update()
        .where(
            table.c.id == sa.bindparam("b_id"),
            wrapped.key_id == source,
            wrapped.wrapped == sa.bindparam("b_old"),
        )
        .values({wrapped.wrapped: sa.bindparam("b_new"), wrapped.key_id: state.to})
    )
    # One executemany; both drivers count the rows it changed (a row changed meanwhile is not).
    changed: int = db.session.execute(statement, changes).rowcount  # type: ignore[attr-defined]
    state.rewrapped += changed
    state.skipped += len(changes) - changed
    if wrapped is _WEBHOOK_SECRETS:
        state.secrets_rewrapped += changed


def verify_sample(key_id: str, sample: int = VERIFY_SAMPLE) -> VerifyReport:
    """Open up to `sample` documents under `key_id`, spread over the id range, and as many
    attachments: each must unwrap, decrypt, authenticate and match its recorded SHA-256."""
    report = VerifyReport(key_id=key_id)
    rows = itertools.chain.from_iterable(
        ((wrapped, row) for row in _sample_rows(wrapped, key_id, sample)) for wrapped in _CONTENTS
    )
    for wrapped, row in rows:
        report.checked += 1
        try:
            with open_content(
                storage_key=row.storage_key, content_key=row.key, content_key_id=key_id
            ) as content:
                digest = _sha256(content)
        except StorageError as error:
            report.failures.append(Failure(row.id, str(error), wrapped.kind))
            continue
        if digest != row.sha256:
            report.failures.append(
                Failure(row.id, "the decrypted content has another SHA-256", wrapped.kind)
            )
    db.session.rollback()
    return report


def verify_webhook_secrets(key_id: str, sample: int = VERIFY_SAMPLE) -> VerifyReport:
    """Unwrap up to `sample` webhook subscriptions' secrets under `key_id`: AES key wrap checks
    its own integrity, so a secret that unwraps is the one made at the subscription."""
    report = VerifyReport(key_id=key_id)
    for row in _sample_rows(_WEBHOOK_SECRETS, key_id, sample):
        report.checked += 1
        try:
            unwrap_content_key(row.key, key_id)
        except StorageError as error:
            report.failures.append(Failure(row.id, str(error), _WEBHOOK_SECRETS.kind))
    db.session.rollback()
    return report


def _sample_rows(wrapped: _Wrapped, key_id: str, sample: int) -> Iterator[sa.Row]:
    """Every row of the key when there are at most `sample`; else up to `sample` from
    random points of the id range (a random point can miss a row whose id follows
    another's closely, so a small set is read whole)."""
    first = db.session.execute(_sampled(wrapped, key_id).limit(sample + 1)).all()
    if len(first) <= sample:
        yield from first
        return
    seen: set[uuid.UUID] = set()
    for _ in range(sample):
        row = _row_at_or_after(wrapped, key_id, uuid.UUID(int=random.getrandbits(128)))
        if row is not None and row.id not in seen:
            seen.add(row.id)
            yield row


def _row_at_or_after(wrapped: _Wrapped, key_id: str, start: uuid.UUID) -> sa.Row | None:
    base = _sampled(wrapped, key_id).limit(1)
    row = db.session.execute(base.where(wrapped.table.c.id >= start)).first()
    return row if row is not None else db.session.execute(base).first()


def _sampled(wrapped: _Wrapped, key_id: str) -> sa.Select:
    """The rows whose key unwraps with key_id and, for documents and attachments, whose content
    can be opened; the purge erases the key of a deleted document's attachments with the
    document's."""
    table = wrapped.table
    query = sa.select(table.c.id, wrapped.wrapped.label("key")).where(
        wrapped.key_id == key_id, wrapped.wrapped.is_not(None)
    )
    if "storage_key" in table.c:
        query = query.add_columns(table.c.storage_key, table.c.sha256).where(
            table.c.storage_key.is_not(None)
        )
    if "deleted_at" in table.c:
        query = query.where(table.c.deleted_at.is_(None))
    return query.order_by(wrapped.key_id, table.c.id)


def _sha256(content: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := content.read(crypto.CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()
