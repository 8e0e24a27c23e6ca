"""Deletion at expiry: expired documents deleted per second, with stored objects and without.

    .venv/bin/python benchmarks/purge.py [--documents 1000000] [--deleted 1000000]
        [--expired 200000] [--objects 20000] [--object-kb 100] [--scale 1] [--tracemalloc]
        [--keep-database]

Builds a fresh PostgreSQL database with the migrations (dropped again at the end, unless
--keep-database) holding --documents documents that are still valid, --objects expired ones
whose content is really stored (encrypted by ebox.storage.services.store_content, local backend
in a temporary directory) and --expired expired ones whose storage key names no object (deleting
those costs the store a failed unlink: what remains is the database's share), and --deleted
minimal records of earlier purges, which stay in the documents table (and in its expires_at
index) for good, as in production. --scale multiplies --documents, --deleted and --expired.

Then ebox.retention.services.purge_expired runs in this process as the purge job does, three times:
first at a moment only the documents with objects had expired by (rows reduced to the minimal
record, objects removed, markers cleared), then at the present for the rest; then once more with
nothing left to do, which is what most hourly runs are. Prints documents deleted per second for
each pass (target: >= 2,000/s), where the time goes, how long the first and the last batches
of a pass took, the plans of the batch's statements (EXPLAIN ANALYZE) and the peak resident size
of the process (--tracemalloc: also the peak Python allocation of each pass).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, text

from benchmarks.alerts import (
    INSERT_DOCUMENT,
    NUMBERED_CITIZENS,
    SENDERS,
    Stages,
    insert_documents,
    make_senders,
    naive,
    peak_rss_mb,
    python_peak,
    quiet_logging,
)
from benchmarks.common import add_database_options, fresh_database, settle
from ebox import create_app
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.retention import services
from ebox.storage.services import list_storage_keys, store_content

TARGET_PER_SECOND = 2_000
# Document ranks (see benchmarks.alerts): each makes ids and keys of its own.
LIVE, WITHOUT_OBJECT, WITH_OBJECT, DELETED = 1, 2, 3, 4

# (label, module, attribute) as purge_expired calls them; indented rows are part of the row
# above them.
PURGE_STAGES = (
    ("remove objects (SELECT, unlink each, UPDATE, commit)", services, "_remove_marked_objects"),
    ("  delete_contents (the store's delete_many)", services, "delete_contents"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000, help="still valid")
    parser.add_argument(
        "--deleted", type=int, default=1_000_000, help="minimal records of earlier purges"
    )
    parser.add_argument("--expired", type=int, default=200_000, help="expired, no object")
    parser.add_argument("--objects", type=int, default=20_000, help="expired, object stored")
    parser.add_argument("--object-kb", type=int, default=100)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies --documents, --deleted, --expired"
    )
    parser.add_argument("--batch-size", type=int, default=services.PURGE_BATCH)
    parser.add_argument("--tracemalloc", action="store_true", help="peak Python allocation")
    parser.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    add_database_options(parser, "ebox_bench_purge")
    parser.add_argument(
        "--hold-transaction",
        action="store_true",
        help="keep a transaction open on the side while purging (a long report, a backup)",
    )
    args = parser.parse_args()
    live = int(args.documents * args.scale)
    expired = int(args.expired * args.scale)
    deleted = int(args.deleted * args.scale)

    with (
        tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder_name,
        fresh_database(args.database_server, args.database, keep=args.keep_database) as url,
    ):
        folder = Path(folder_name)
        settings = Settings(
            env="development",
            instance_path=folder / "instance",
            database_url=url,
            storage_path=str(folder / "documents"),
        )
        app = create_app(settings)
        quiet_logging()
        try:
            with app.app_context():
                upgrade()
                now = utcnow()
                started = time.perf_counter()
                make_senders(SENDERS)
                make_rows(live, expired, args.objects, now)
                make_minimal_records(deleted, now)
                stored = store_objects(args.objects, args.object_kb * 1024)
                settle(url)
                print(
                    f"data: {live:,} valid documents, {deleted:,} minimal records of earlier "
                    f"purges, {args.objects:,} expired with a stored "
                    f"object of {args.object_kb} kB ({stored:,} objects in the store), "
                    f"{expired:,} expired without one (built in "
                    f"{time.perf_counter() - started:.0f} s)"
                )
                db.session.remove()
            with held_transaction(url, enabled=args.hold_transaction):
                measure(app, now, args)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def measure(app: Flask, now: datetime, args: Any) -> None:
    captured = capture_statements(app)
    print(f"peak RSS before the purge: {peak_rss_mb():.0f} MB, batches of {args.batch_size}")
    print(oldest_transaction(app))
    # The documents with objects expired three to two days ago, the others 36 to 12 hours ago:
    # a purge at two days ago deletes only the first.
    passes = (
        ("expired with stored objects", now - timedelta(days=2)),
        ("expired without objects (database side)", now),
        ("nothing left to delete (most hourly runs)", now),
    )
    plans: list[str] = []
    for number, (label, moment) in enumerate(passes):
        stages = Stages()
        with (
            app.app_context(),
            stages.timing(PURGE_STAGES),
            python_peak(args.tracemalloc) as python,
        ):
            started = time.perf_counter()
            ends: list[float] = []
            summary = services.purge_expired(
                moment,
                batch_size=args.batch_size,
                progress=stopwatch(ends),
            )
            seconds = time.perf_counter() - started
            db.session.remove()
        rate = summary.documents / seconds if summary.documents else 0.0
        print(
            f"\n{label}: {summary.documents:,} documents deleted, "
            f"{summary.objects_removed:,} objects removed in {seconds:.2f} s"
        )
        if summary.documents:
            print(f"  {rate:10,.0f} documents deleted /s (target >= {TARGET_PER_SECOND:,}/s)")
            stages.report(seconds, rest="the rest: find and reduce rows (SELECT, UPDATE, commit)")
            if len(ends) >= 10:
                print(batch_trend([started, *ends]))
        print(f"  peak RSS: {peak_rss_mb():.0f} MB{python()}")
        if args.explain and number == 0:
            plans = explain(app, captured, now)  # the second pass's rows are still there
    with app.app_context():
        left = db.session.execute(
            text(
                "SELECT count(*) FILTER (WHERE deleted_at IS NULL AND expires_at <= :now), "
                "count(*) FILTER (WHERE storage_key IS NOT NULL AND deleted_at IS NOT NULL), "
                "count(*) FILTER (WHERE deleted_at IS NOT NULL AND title IS NOT NULL) "
                "FROM documents"
            ),
            {"now": naive(now)},
        ).one()
        objects_left = sum(1 for _ in list_storage_keys())
        db.session.remove()
    print(
        f"\nafterwards: {left[0]} expired documents left, {left[1]} objects still marked, "
        f"{left[2]} deleted rows with a title, {objects_left:,} objects in the store "
        f"(the valid documents' keys name no object)"
    )
    for line in plans:
        print(line)


@contextlib.contextmanager
def held_transaction(url: str, *, enabled: bool) -> Iterator[None]:
    """A transaction with an id, open on another connection for as long as the block runs."""
    if not enabled:
        yield
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        xid = connection.execute(text("SELECT txid_current()")).scalar()
        print(f"transaction {xid} held open on the side during the purge")
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def oldest_transaction(app: Flask) -> str:
    """While a transaction (in any database of the server) is older than the rows a purge
    reduces, their old versions are not yet dead to everyone: index scans cannot mark their
    entries dead, and every batch walks over all the batches before it."""
    with app.app_context():
        row = db.session.execute(
            text(
                "SELECT datname, pid, state, "
                "CAST(EXTRACT(EPOCH FROM now() - xact_start) AS integer) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND (backend_xid IS NOT NULL "
                "OR (backend_xmin IS NOT NULL AND datname = current_database())) "
                "ORDER BY xact_start LIMIT 1"
            )
        ).one_or_none()
        db.session.remove()
    if row is None:
        return "no other transaction holds back the removal of dead rows"
    name, pid, state, seconds = row
    return (
        f"the oldest other open transaction: {seconds} s old, database {name}, pid {pid}, "
        f"{state}: while it lasts, dead index entries are not skipped"
    )


# --- data ------------------------------------------------------------------------------------


def make_rows(live: int, expired: int, objects: int, now: datetime) -> None:
    """The valid documents (expiring over the next year), the expired ones without objects
    (36 to 12 hours ago), then those with (3 to 2 days ago; their objects are stored next).
    Expiries are spread in an order other than the rows'."""

    def spread(seconds: int) -> str:
        return f"make_interval(secs => (g::bigint * 7919) % {seconds})"

    for rank, count, expires in (
        (LIVE, live, f"CAST(:now AS timestamp) + interval '1 minute' + {spread(31_536_000)}"),
        (
            WITHOUT_OBJECT,
            expired,
            f"CAST(:now AS timestamp) - interval '36 hours' + {spread(86_400)}",
        ),
        (WITH_OBJECT, objects, f"CAST(:now AS timestamp) - interval '3 days' + {spread(86_400)}"),
    ):
        started = time.perf_counter()
        insert_documents(
            count,
            rank,
            naive(now),
            published="CAST(:now AS timestamp) - interval '400 days'",
            expires=expires,
            read="CASE WHEN g % 2 = 0 THEN CAST(:now AS timestamp) - interval '300 days' END",
        )
        print(f"  rank {rank}: {count:,} rows in {time.perf_counter() - started:.0f} s", flush=True)


def make_minimal_records(count: int, now: datetime) -> None:
    """Documents deleted by earlier purges, kept as minimal records: they expired over the two
    years before the others, and stay in the table (and in its expires_at index) for good."""
    started = time.perf_counter()
    expires = "CAST(:now AS timestamp) - interval '4 days' - make_interval(secs => g % 63072000)"
    values = ", ".join(
        [
            "CAST(key AS uuid), 1 + (g + rank) % :senders, 1 + (g + rank) % :senders",
            "lpad(g::text, 11, '0'), 'T' || rank || '-' || g, NULL, NULL, 'nl', NULL, NULL",
            "'application/pdf', 104857, md5(key) || md5(g::text), NULL, NULL, NULL, false",
            f"{expires} - interval '400 days', {expires}, NULL, NULL",
            f"{expires} + interval '30 minutes'",
        ]
    )
    db.session.execute(
        text(f"{INSERT_DOCUMENT} SELECT {values} FROM {NUMBERED_CITIZENS}"),  # noqa: S608
        {"rank": DELETED, "senders": SENDERS, "now": naive(now), "first": 1, "last": count},
    )
    db.session.commit()
    print(f"  {count:,} minimal records in {time.perf_counter() - started:.0f} s", flush=True)


def store_objects(count: int, size: int) -> int:
    """Store an encrypted object for each document with one, and write its keys into the row."""
    content = os.urandom(size)
    started = time.perf_counter()
    ids, keys, wrapped = [], [], []
    for g in range(1, count + 1):
        stored = store_content(content)
        ids.append(uuid.UUID(f"{WITH_OBJECT:08x}{g:024x}"))
        keys.append(stored.storage_key)
        wrapped.append(stored.content_key)
    db.session.execute(
        text(
            "UPDATE documents SET storage_key = stored.storage_key, "
            "content_key = stored.content_key "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS text[]), "
            "CAST(:wrapped AS bytea[])) AS stored (id, storage_key, content_key) "
            "WHERE documents.id = stored.id"
        ),
        {"ids": ids, "keys": keys, "wrapped": wrapped},
    )
    db.session.commit()
    print(f"  {count:,} objects stored in {time.perf_counter() - started:.0f} s", flush=True)
    return sum(1 for _ in list_storage_keys())


# --- EXPLAIN ---------------------------------------------------------------------------------

SELECT_EXPIRED = "one batch: expired documents (SELECT ... FOR UPDATE SKIP LOCKED)"
REDUCE = "one batch: reduce the rows to the minimal record (UPDATE)"
SELECT_MARKED = "one batch: objects still to remove (SELECT ... FOR UPDATE SKIP LOCKED)"
# Each is recognised by words its SQL holds.
WATCHED = {
    SELECT_EXPIRED: ("SELECT documents.id ", "deleted_at IS NULL", "SKIP LOCKED"),
    REDUCE: ("UPDATE documents SET", "title="),
    SELECT_MARKED: ("SELECT documents.id, documents.storage_key", "SKIP LOCKED"),
}


def capture_statements(app: Flask) -> dict[str, tuple[str, Any]]:
    """The first statement of each kind in WATCHED, with its parameters, as it was sent."""
    captured: dict[str, tuple[str, Any]] = {}
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        for label, words in WATCHED.items():
            if label not in captured and all(word in statement for word in words):
                captured[label] = (statement, parameters)

    return captured


def explain(app: Flask, captured: dict[str, tuple[str, Any]], now: datetime) -> list[str]:
    """The batch's statements, as the first pass sent them, under EXPLAIN ANALYZE (rolled back).
    The expired-documents SELECT is run at the present, where the second pass's rows wait."""
    lines = []
    with app.app_context(), db.engine.connect() as connection:
        for label in (SELECT_EXPIRED, REDUCE, SELECT_MARKED):
            if label not in captured:
                continue
            statement, parameters = captured[label]
            if label == SELECT_EXPIRED:
                parameters = {
                    name: naive(now) if isinstance(value, datetime) else value
                    for name, value in dict(parameters).items()
                }
            with connection.begin() as transaction:
                rows = connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                ).all()
                transaction.rollback()
            lines += [f"\nEXPLAIN ANALYZE, {label}:", *(f"  {shorter(line)}" for (line,) in rows)]
    return lines


def stopwatch(ends: list[float]) -> Callable[[object], None]:
    """A progress callback that notes when each batch ended."""
    return lambda _summary: ends.append(time.perf_counter())


def batch_trend(moments: list[float]) -> str:
    """How long the first and the last tenth of the batches took: a batch that has to walk
    past what the batches before it did gets slower as the pass goes on."""
    durations = [later - earlier for earlier, later in itertools.pairwise(moments)]
    tenth = max(len(durations) // 10, 1)
    first, last = durations[:tenth], durations[-tenth:]
    return (
        f"  {len(durations)} batches: the first {len(first)} took "
        f"{sum(first) / len(first) * 1000:.0f} ms each, the last {len(last)} "
        f"{sum(last) / len(last) * 1000:.0f} ms each"
    )


def shorter(line: str, width: int = 240) -> str:
    """A plan line, cut: the UPDATE's line lists its 500 ids."""
    return line if len(line) <= width else line[:width] + " ..."


if __name__ == "__main__":
    main()
