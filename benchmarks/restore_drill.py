"""Backup and restore measured: logical dump and restore at size, and point-in-time recovery
from a base backup and archived WAL after the server is lost under publication load.

    .venv/bin/python benchmarks/restore_drill.py [--only logical,pitr]
        [--documents 500000] [--citizens 100000] [--objects 10000] [--object-kb 100]
        [--registered 100] [--sample 500] [--jobs 2]
        [--archive-timeout 60] [--before-backup 20] [--after-backup 150] [--clients 4]

logical: builds `ebox_bench_restore` on the shared server with the migrations, then loads it
the way benchmarks/inbox.py does (set-based SQL): --citizens citizens, --documents documents,
each with its `document.published` audit event (hashed by ebox.audit.hashing, written with
COPY into the 16 chains, which an anchor then seals), and --registered registered documents
published, opened and proved through the real code (evidence and sealed PDF proofs). The
documents' rows name --objects really stored encrypted objects of --object-kb (several rows
share an object, so that the store stays small enough for this machine: the rows are what
the database's figures measure, the objects what the copy's figures measure). Then, timed:
pg_dump --format=custom; pg_restore into an empty throw-away PostgreSQL 15 cluster (durable:
fsync on) section by section (pre-data, data and post-data with --jobs); rsync -a of the store;
`flask ebox restore-check --sample N` on the restored copy. Prints the rates and scales them
to national size (decision 0017's 250 M documents, ~25 TB of objects).

pitr: a throw-away cluster with archive_mode=on, archive_command copying each segment to an
archive folder and archive_timeout as given, fsync and synchronous_commit on. gunicorn serves
eBox on it; --clients threads publish signed publishEboxMessage requests over HTTP the whole
time. After --before-backup seconds pg_basebackup runs; --after-backup seconds later every
process of the server is killed (SIGKILL) and its data directory removed. The base backup is
restored with restore_command and replayed to the end of the archive (timeline latest); the
recovery time runs from the start of the restore until /readyz answers 200 and restore-check
passes. Publications acknowledged before the loss are compared with those found: the
documents, and the time window, lost. The restore is done a second time up to a moment
halfway (recovery_target_time), to show how the time grows with the WAL replayed.

Every cluster, folder and the database built on the shared server are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from rq import Queue
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.common import add_database_options, fresh_database, settle
from benchmarks.inbox import make_citizens, make_senders
from benchmarks.publish import (
    HEADERS,
    SOAP_PATH,
    RequestFactory,
    check_publication,
    gunicorn,
    prepare_data,
)
from ebox import create_app, national_number
from ebox.audit.hashing import GENESIS_HASH, event_hash
from ebox.audit.services import CHAINS, seal_anchor
from ebox.config import Settings
from ebox.demo.pdf import make_pdf
from ebox.evidence.jobs import make_proof
from ebox.extensions import db
from ebox.mailbox.services import confirm_receipt
from ebox.storage.services import StoredContent, store_content
from tests.factories import create_citizen, create_document, create_message_type, create_sender
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask", "--app", "app"]
MB = 1_000_000
GB = 1_000_000_000
# National size (decision 0017, docs/performance.md): documents kept three years, their objects.
NATIONAL_DOCUMENTS = 250_000_000
NATIONAL_OBJECT_BYTES = 250_000_000 * 100_000  # ~100 kB each: ~25 TB
SECONDS_PER_DAY = 86_400
# The throw-away clusters are durable, as a production server is; PostgreSQL 15's defaults
# otherwise, except these (a restore's usual tuning; a 24 GB machine).
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'2GB'",
    "log_checkpoints": "on",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="logical,pitr", help="logical, pitr or both")
    parser.add_argument("--documents", type=int, default=500_000)
    parser.add_argument("--citizens", type=int, default=100_000)
    parser.add_argument("--objects", type=int, default=10_000, help="distinct stored objects")
    parser.add_argument("--object-kb", type=int, default=100)
    parser.add_argument("--registered", type=int, default=100, help="with evidence and proof")
    parser.add_argument("--sample", type=int, default=500, help="restore-check --sample")
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore --jobs")
    parser.add_argument("--archive-timeout", type=int, default=60, help="seconds")
    parser.add_argument("--before-backup", type=float, default=20, help="seconds of load")
    parser.add_argument("--after-backup", type=float, default=150, help="seconds of load")
    parser.add_argument("--clients", type=int, default=4, help="publishing threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--pitr-citizens", type=int, default=200)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    add_database_options(parser, "ebox_bench_restore")
    args = parser.parse_args()
    parts = {part for part in args.only.split(",") if part}
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="ebox-bench-restore-") as folder_name:
        folder = Path(folder_name)
        folder.chmod(0o711)  # the clusters' account (as root: postgres) reaches its folders
        if "logical" in parts:
            logical(args, folder)
        if "pitr" in parts:
            pitr(args, folder)


# --- throw-away clusters --------------------------------------------------------------------


class Cluster(PostgresServer):
    """A throw-away PostgreSQL 15 cluster (tests/postgres_server.py) run as a production server
    is: durable, with the settings given, written into postgresql.conf."""

    def __init__(self, directory: Path, settings: dict[str, str], port: int | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(directory)
        if port is not None:
            self.port = port
        self.settings = settings
        self.starts = 0

    def configure(self, settings: dict[str, str]) -> None:
        lines = [f"{name} = {value}" for name, value in settings.items()]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# restore drill\n" + "\n".join(lines) + "\n")

    def start(self) -> None:
        self.starts += 1
        self.log = self.directory / f"server-{self.starts}.log"
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        subprocess.run(  # noqa: S603 (our own command line)
            [
                str(self.bin / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "3600",
                "-o",
                options,
            ],
            check=True,
            capture_output=True,
            timeout=3600,
            **self._run_as,
        )
        self._wait_until_it_answers(timeout=3600)

    def kill(self) -> None:
        """The machine is lost: every process of the server killed at once."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def give_to_server(self, path: Path) -> None:
        """As root, the server's account must own what it writes to."""
        if self._run_as:
            os.chown(path, self._run_as["user"], self._run_as["group"])
            for inside in path.rglob("*"):
                os.chown(inside, self._run_as["user"], self._run_as["group"], follow_symlinks=False)

    def database_url(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def cluster(directory: Path, settings: dict[str, str]) -> Iterator[Cluster]:
    """A new, started cluster, stopped and removed when the block ends."""
    server = Cluster(directory, settings)
    try:
        server.initdb()
        server.configure(settings)
        server.start()
        yield server
    finally:
        stop_quietly(server)
        shutil.rmtree(directory, ignore_errors=True)


def stop_quietly(server: Cluster) -> None:
    if server.data.exists() and server.is_running():
        server.stop("immediate")


def create_database(server: Cluster, name: str) -> str:
    admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.database_url(name)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def timed_run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (our own command lines)
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=7200,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 and "restore-check" not in command:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def ebox_env(settings: Settings) -> dict[str, str]:
    return {
        "EBOX_ENV": settings.env,
        "EBOX_INSTANCE_PATH": str(settings.instance_path),
        "EBOX_DATABASE_URL": settings.database_url,
        "EBOX_STORAGE_PATH": settings.storage_path,
        "EBOX_REDIS_URL": settings.redis_url,
        "EBOX_LOG_FORMAT": "text",
    }


def restore_check(settings: Settings, sample: int) -> tuple[float, str]:
    """`flask ebox restore-check --sample N` against the settings' database and store."""
    seconds, output = timed_run(
        [*FLASK, "ebox", "restore-check", "--sample", str(sample)], ebox_env(settings)
    )
    if not output.rstrip().endswith("restore check passed"):
        sys.exit(f"restore-check did not pass:\n{output[-3000:]}")
    return seconds, output


def du_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


# --- 1. logical backup and restore -----------------------------------------------------------


def logical(args: argparse.Namespace, folder: Path) -> None:
    print(
        f"\n== logical: pg_dump / pg_restore --jobs={args.jobs} / rsync / restore-check, "
        f"{args.documents:,} documents =="
    )
    with fresh_database(
        args.database_server, args.database, keep=args.keep_database
    ) as database_url:
        settings = Settings(
            env="development",
            instance_path=folder / "instance",
            database_url=database_url,
            storage_path=str(folder / "documents"),
            redis_url=args.redis_url,
        )
        app = create_app(settings)
        with app.app_context():
            upgrade()
            try:
                build(args, app)
            finally:
                forget_jobs(args.redis_url)
            db.session.remove()
            db.engine.dispose()
        settle(database_url)
        sizes = relation_sizes(database_url)
        measure_logical(args, folder, settings, sizes)


def build(args: argparse.Namespace, app: Flask) -> None:
    started = time.perf_counter()
    make_senders()
    make_citizens(args.citizens)
    db.session.commit()
    objects = store_objects(args.objects, args.object_kb * 1000)
    print(f"  {len(objects):,} objects stored in {time.perf_counter() - started:.0f} s")
    step = time.perf_counter()
    begin = datetime.now(UTC) - timedelta(days=365)
    spacing = timedelta(days=364) / max(args.documents, 1)
    chunk = 250_000
    for first in range(1, args.documents + 1, chunk):
        last = min(args.documents, first + chunk - 1)
        insert_documents(first, last, args.citizens, objects, begin, spacing)
        db.session.commit()
    print(f"  {args.documents:,} documents in {time.perf_counter() - step:.0f} s", flush=True)
    step = time.perf_counter()
    write_audit_events(args.documents, args.citizens, objects, begin, spacing)
    db.session.commit()
    print(f"  {args.documents:,} audit events in {time.perf_counter() - step:.0f} s", flush=True)
    step = time.perf_counter()
    registered(args.registered)
    anchor = seal_anchor()
    db.session.commit()
    print(
        f"  {args.registered} registered documents opened, with their evidence and proof, in "
        f"{time.perf_counter() - step:.0f} s; anchor {anchor.id} sealed",
        flush=True,
    )
    print(f"data built in {time.perf_counter() - started:.0f} s")


def forget_jobs(redis_url: str) -> None:
    """Opening registered mail queued proof jobs (the proofs were made here): removed."""
    connection = Redis.from_url(redis_url)
    try:
        Queue("default", connection=connection).delete(delete_jobs=True)
    finally:
        connection.close()


def store_objects(count: int, size: int) -> list[StoredContent]:
    """count encrypted objects of a PDF of `size` bytes, each under a data key of its own."""
    pdf = make_pdf("Restore drill letter", ["One of many"], total_size=size)
    return [store_content(pdf) for _ in range(count)]


def document_id(number: int) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(f"restore-drill{number}".encode()).hexdigest())  # noqa: S324


def recipient_of(number: int, citizens: int) -> str:
    return f"{1 + (number * 7919) % citizens:011d}"


def type_of(number: int) -> int:
    return 1 + number % 80  # benchmarks.inbox: 40 senders, two message types each


# Document `number` of the load; its recipient, type, object and dates as the Python above.
DOCUMENTS = """
INSERT INTO documents (id, sender_id, message_type_id, recipient_national_number,
    sender_ticket, sender_sequence, title, language, body_text, file_name, media_type,
    size_bytes, sha256, storage_key, content_key, content_key_id, is_registered,
    published_at, expires_at, read_at, hidden_at, deleted_at)
SELECT CAST(md5('restore-drill' || i) AS uuid), message_types.sender_id, message_types.id,
       lpad((1 + (i * 7919) % CAST(:citizens AS bigint))::text, 11, '0'), 'R' || i, NULL,
       'Letter ' || i, 'nl', NULL, 'letter.pdf', 'application/pdf',
       stored.size_bytes, stored.sha256, stored.storage_key, stored.content_key,
       :key_id, false, published, published + make_interval(days => message_types.validity_days),
       CASE WHEN i % 4 <> 0 THEN published + interval '9 hours' END, NULL, NULL
FROM (SELECT i, 1 + i % :objects AS o,
             CAST(:begin AS timestamp) + i * CAST(:spacing AS interval) AS published
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i) AS numbered
JOIN message_types ON message_types.id = 1 + numbered.i % 80
JOIN unnest(CAST(:sizes AS integer[]), CAST(:digests AS text[]), CAST(:keys AS text[]),
            CAST(:wrapped AS bytea[]))
     WITH ORDINALITY AS stored (size_bytes, sha256, storage_key, content_key, o)
     ON stored.o = numbered.o
"""


def insert_documents(
    first: int,
    last: int,
    citizens: int,
    objects: list[StoredContent],
    begin: datetime,
    spacing: timedelta,
) -> None:
    db.session.execute(
        text(DOCUMENTS),
        {
            "first": first,
            "last": last,
            "citizens": citizens,
            "objects": len(objects),
            "sizes": [stored.size_bytes for stored in objects],
            "digests": [stored.sha256 for stored in objects],
            "keys": [stored.storage_key for stored in objects],
            "wrapped": [stored.content_key for stored in objects],
            "key_id": objects[0].content_key_id,
            "begin": begin.replace(tzinfo=None),
            "spacing": spacing,
        },
    )


def write_audit_events(
    count: int,
    citizens: int,
    objects: list[StoredContent],
    begin: datetime,
    spacing: timedelta,
) -> None:
    """Each document's `document.published` event, as the SOAP service writes it, appended to
    the chains in turn and hashed by the same function; COPY writes them."""
    heads = {chain: (0, GENESIS_HASH) for chain in range(CHAINS)}
    connection = db.session.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    columns = (
        "occurred_at, actor_type, actor_id, action, subject_type, subject_id, details, "
        "chain, seq, previous_hash, hash"
    )
    with connection.cursor() as cursor:
        sender_of = dict(cursor.execute("SELECT id, sender_id FROM message_types").fetchall())
        with cursor.copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
            for number in range(1, count + 1):
                chain = number % CHAINS
                seq, previous = heads[chain]
                occurred = begin + number * spacing
                values = {
                    "occurred_at": occurred,
                    "actor_type": "sender",
                    "actor_id": str(sender_of[type_of(number)]),
                    "action": "document.published",
                    "subject_type": "document",
                    "subject_id": str(document_id(number)),
                    "details": {
                        "ticket": f"R{number}",
                        "sequence": None,
                        "message_type_id": type_of(number),
                        "recipient": national_number.mask(recipient_of(number, citizens)),
                        "size_bytes": objects[number % len(objects)].size_bytes,
                        "registered": False,
                        "repeated": False,
                    },
                    "chain": chain,
                    "seq": seq + 1,
                    "previous_hash": previous,
                }
                sealed = values["hash"] = event_hash(values)
                heads[chain] = (seq + 1, sealed)
                copy.write_row(
                    (
                        occurred.replace(tzinfo=None),
                        *(values[name] for name in ("actor_type", "actor_id", "action")),
                        values["subject_type"],
                        values["subject_id"],
                        json.dumps(values["details"]),
                        chain,
                        seq + 1,
                        previous,
                        sealed,
                    )
                )
        cursor.execute("DELETE FROM audit_chains")
        cursor.executemany(
            "INSERT INTO audit_chains (id, head_seq, head_hash, legacy_events) "
            "VALUES (%s, %s, %s, 0)",
            [(chain, seq, head) for chain, (seq, head) in heads.items()],
        )


def registered(count: int) -> None:
    """Registered documents published, opened and proved through the application's code."""
    if not count:
        return
    message_type = create_message_type(
        create_sender(may_send_registered=True, enterprise_number="0999999998")
    )
    for number in range(count):
        document = create_document(
            create_citizen(),
            message_type=message_type,
            is_registered=True,
            title=f"Notice {number}",
        )
        confirm_receipt(document=document)
        db.session.commit()
        if make_proof(str(document.id)) is None:
            sys.exit(f"no proof was made for registered document {document.id}")


@dataclass
class Sizes:
    database: int
    documents_heap: int  # with its TOAST
    documents_indexes: int
    audit_heap: int
    audit_indexes: int
    documents: int
    events: int
    table: list[tuple[str, int, int]] = field(default_factory=list)  # name, heap, indexes

    @property
    def heap(self) -> int:
        return sum(heap for _, heap, _ in self.table)

    @property
    def indexes(self) -> int:
        return sum(indexes for _, _, indexes in self.table)


def relation_sizes(url: str) -> Sizes:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "ORDER BY pg_total_relation_size(oid) DESC"
            )
        ).all()
        database = connection.scalar(text("SELECT pg_database_size(current_database())"))
        documents = connection.scalar(text("SELECT count(*) FROM documents"))
        events = connection.scalar(text("SELECT count(*) FROM audit_events"))
    engine.dispose()
    table = [(name, int(heap), int(indexes)) for name, heap, indexes in rows]
    by_name = {name: (heap, indexes) for name, heap, indexes in table}
    sizes = Sizes(
        database=int(database or 0),
        documents_heap=by_name["documents"][0],
        documents_indexes=by_name["documents"][1],
        audit_heap=by_name["audit_events"][0],
        audit_indexes=by_name["audit_events"][1],
        documents=int(documents or 0),
        events=int(events or 0),
        table=table,
    )
    print(
        f"database: {sizes.database / MB:,.0f} MB ({sizes.heap / MB:,.0f} MB of tables, "
        f"{sizes.indexes / MB:,.0f} MB of indexes); {sizes.documents:,} documents, "
        f"{sizes.events:,} audit events"
    )
    for name, heap, indexes in table[:6]:
        print(f"  {name}: {heap / MB:,.0f} MB + {indexes / MB:,.0f} MB of indexes")
    return sizes


def measure_logical(
    args: argparse.Namespace, folder: Path, settings: Settings, sizes: Sizes
) -> None:
    dump = folder / "ebox.dump"
    bin_folder = PostgresServer(folder).bin
    dump_seconds, _ = timed_run(
        [
            str(bin_folder / "pg_dump"),
            "--format=custom",
            f"--file={dump}",
            f"--dbname={libpq(settings.database_url)}",
        ]
    )
    dump_bytes = dump.stat().st_size
    print(
        f"pg_dump --format=custom: {dump_seconds:.1f} s, {dump_bytes / MB:,.0f} MB "
        f"({sizes.database / dump_seconds / MB:.1f} MB of database per second)"
    )
    source_store = Path(settings.storage_path)
    copied_store = folder / "restored-documents"
    store_bytes = du_bytes(source_store)
    store_files = sum(1 for entry in source_store.rglob("*") if entry.is_file())
    copy_seconds, _ = timed_run(["rsync", "-a", f"{source_store}/", f"{copied_store}/"])
    print(
        f"rsync -a of the store: {store_files:,} objects, {store_bytes / MB:,.0f} MB in "
        f"{copy_seconds:.1f} s: {store_bytes / copy_seconds / MB:.0f} MB/s, "
        f"{store_files / copy_seconds:,.0f} objects/s"
    )
    phases: dict[str, float] = {}
    with cluster(folder / "restored-cluster", DURABLE) as server:
        url = create_database(server, "ebox")
        for section in ("pre-data", "data", "post-data"):
            command = [
                str(server.bin / "pg_restore"),
                "--no-owner",
                "--exit-on-error",
                f"--section={section}",
                f"--dbname={libpq(url)}",
                str(dump),
            ]
            if section != "pre-data":
                command.insert(1, f"--jobs={args.jobs}")
            phases[section], _ = timed_run(command)
            print(f"pg_restore --section={section}: {phases[section]:.1f} s", flush=True)
        restored = Settings(
            env="development",
            instance_path=settings.instance_path,
            database_url=url,
            storage_path=str(copied_store),
            redis_url=args.redis_url,
        )
        check_seconds, output = restore_check(restored, args.sample)
        print(f"restore-check --sample {args.sample}: {check_seconds:.1f} s")
        print(textwrap_indent(output))
        audit = re.search(r"audit log: .*\(([0-9.]+) s\)", output)
        verify_seconds = float(audit.group(1)) if audit else check_seconds
        print(f"of which the audit log's verification: {verify_seconds:.1f} s")
        restored_sizes = relation_sizes(url)
    shutil.rmtree(copied_store, ignore_errors=True)
    report_logical(
        args,
        sizes,
        restored_sizes,
        dump_seconds,
        dump_bytes,
        phases,
        check_seconds,
        verify_seconds,
        store_bytes,
        store_files,
        copy_seconds,
    )


def textwrap_indent(output: str) -> str:
    return "\n".join("    " + line for line in output.strip().splitlines() if line.strip())


def report_logical(
    args: argparse.Namespace,
    sizes: Sizes,
    restored: Sizes,
    dump_seconds: float,
    dump_bytes: int,
    phases: dict[str, float],
    check_seconds: float,
    verify_seconds: float,
    store_bytes: int,
    store_files: int,
    copy_seconds: float,
) -> None:
    """Rates measured here, then the national size from them (scaled, not measured)."""
    restore_seconds = sum(phases.values())
    dump_rate = sizes.database / dump_seconds
    data_rate = restored.heap / phases["data"]
    index_rate = restored.indexes / phases["post-data"]
    copy_rate = store_bytes / copy_seconds
    # Per document: its row with its share of the indexes, and its publication event.
    per_document = (sizes.documents_heap + sizes.documents_indexes) / sizes.documents
    per_event = (sizes.audit_heap + sizes.audit_indexes) / sizes.events
    national_heap = NATIONAL_DOCUMENTS * (
        sizes.documents_heap / sizes.documents + sizes.audit_heap / sizes.events
    )
    national_indexes = NATIONAL_DOCUMENTS * (
        sizes.documents_indexes / sizes.documents + sizes.audit_indexes / sizes.events
    )
    national_database = national_heap + national_indexes
    national = {
        "pg_dump": national_database / dump_rate,
        "pg_restore data": national_heap / data_rate,
        "pg_restore indexes and constraints": national_indexes / index_rate,
        "audit verification (restore-check)": NATIONAL_DOCUMENTS * verify_seconds / sizes.events,
        "store copy, full (rsync)": NATIONAL_OBJECT_BYTES / copy_rate,
    }
    print("\n| measured here | figure |")
    print("|---|---|")
    print(
        f"| database | {sizes.database / MB:,.0f} MB: {sizes.documents:,} documents, "
        f"{sizes.events:,} audit events ({per_document:,.0f} B per document row with its "
        f"indexes, {per_event:,.0f} B per event) |"
    )
    print(
        f"| pg_dump --format=custom | {dump_seconds:.1f} s, {dump_bytes / MB:,.0f} MB "
        f"({dump_rate / MB:.1f} MB of database/s) |"
    )
    print(
        f"| pg_restore --section=pre-data | {phases['pre-data']:.1f} s |\n"
        f"| pg_restore --section=data --jobs={args.jobs} | {phases['data']:.1f} s "
        f"({restored.heap / MB:,.0f} MB of tables: {data_rate / MB:.1f} MB/s) |\n"
        f"| pg_restore --section=post-data --jobs={args.jobs} | {phases['post-data']:.1f} s "
        f"({restored.indexes / MB:,.0f} MB of indexes built: {index_rate / MB:.1f} MB/s) |\n"
        f"| pg_restore, in all | {restore_seconds:.1f} s |"
    )
    print(
        f"| restore-check --sample {args.sample} | {check_seconds:.1f} s "
        "(every audit event verified) |"
    )
    print(
        f"| of which: audit verify of {sizes.events:,} events | {verify_seconds:.1f} s "
        f"({sizes.events / verify_seconds:,.0f} events/s) |"
    )
    print(
        f"| rsync -a of the store | {store_bytes / MB:,.0f} MB, {store_files:,} objects in "
        f"{copy_seconds:.1f} s ({copy_rate / MB:.0f} MB/s, {store_files / copy_seconds:,.0f} "
        "objects/s) |"
    )
    print(
        f"\nnational size, scaled from those rates (not measured): {NATIONAL_DOCUMENTS:,} "
        f"documents with one publication event each: {national_heap / GB:,.0f} GB of tables, "
        f"{national_indexes / GB:,.0f} GB of indexes; "
        f"{NATIONAL_OBJECT_BYTES / 1e12:.0f} TB of objects"
    )
    for label, seconds in national.items():
        print(f"  {label}: {seconds / 3600:.1f} h")
    database_restore = (
        national["pg_restore data"]
        + national["pg_restore indexes and constraints"]
        + national["audit verification (restore-check)"]
    )
    print(
        f"  database restored and checked (store already in place): {database_restore / 3600:.1f} h"
    )


# --- 2. point-in-time recovery under publication load ----------------------------------------


@dataclass
class Acknowledged:
    ticket: str
    at: float  # time.monotonic() when the answer was read
    wall: datetime


@dataclass
class Load:
    acknowledged: list[Acknowledged] = field(default_factory=list)
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


TICKET = re.compile(rb"<(?:\w+:)?Ticket>([^<]+)</")


def publish_until_stopped(port: int, factory: RequestFactory, load: Load) -> None:
    """One sender's client: sign, post, note what was acknowledged; on errors, try again."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not load.stop.is_set():
        with load.lock:
            body = factory.one()
        match = TICKET.search(body)
        assert match is not None
        try:
            connection.request("POST", SOAP_PATH, body=body, headers=HEADERS)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            with load.lock:
                load.refused += 1
            time.sleep(0.2)
            continue
        if check_publication(response.status, answer) is None:
            at, wall = time.monotonic(), datetime.now(UTC)
            with load.lock:
                load.acknowledged.append(Acknowledged(match.group(1).decode(), at, wall))
        else:
            with load.lock:
                load.refused += 1
            time.sleep(0.2)
    connection.close()


@dataclass
class Recovery:
    label: str
    copy: float = 0.0
    replay: float = 0.0  # start of the server to the end of recovery (promoted)
    ready: float = 0.0  # until /readyz answered 200
    check: float = 0.0
    total: float = 0.0
    wal_bytes: int = 0
    redo: float = 0.0  # PostgreSQL's own "redo done ... elapsed"
    segments: int = 0
    found: set[str] = field(default_factory=set)


def pitr(args: argparse.Namespace, folder: Path) -> None:
    print(
        f"\n== pitr: base backup + WAL archive (archive_timeout = {args.archive_timeout} s), "
        f"the server lost under publication load =="
    )
    directory = folder / "pitr"
    archive = directory / "archive"
    base = directory / "base"
    settings = {
        **DURABLE,
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"'test ! -f {archive}/%f && cp %p {archive}/%f'",
        "archive_timeout": str(args.archive_timeout),
    }
    with cluster(directory / "cluster", settings) as server:
        archive.mkdir()
        server.give_to_server(archive)
        server.give_to_server(directory)
        url = create_database(server, "ebox")
        ebox = Settings(
            env="development",
            instance_path=folder / "pitr-instance",
            database_url=url,
            storage_path=str(folder / "pitr-documents"),
            redis_url=args.redis_url,
        )
        app = create_app(ebox)
        with app.app_context():
            upgrade()
            identity, recipients = prepare_data(args.pitr_citizens)
            db.session.remove()
            db.engine.dispose()
        pdf = make_pdf("Restore drill letter", ["Published during the drill"], total_size=100_000)
        factory = RequestFactory(identity, pdf, recipients)
        log = folder / "gunicorn-pitr.log"
        with gunicorn(
            "app:app", workers=args.workers, threads=1, cwd=ROOT, env=ebox_env(ebox), log=log
        ) as web:
            load = Load()
            clients = [
                threading.Thread(target=publish_until_stopped, args=(web.port, factory, load))
                for _ in range(args.clients)
            ]
            for client in clients:
                client.start()
            try:
                run_pitr(args, server, base, archive, ebox, web.port, load)
            finally:
                load.stop.set()
                for client in clients:
                    client.join()


def run_pitr(
    args: argparse.Namespace,
    server: Cluster,
    base: Path,
    archive: Path,
    ebox: Settings,
    port: int,
    load: Load,
) -> None:
    started = time.monotonic()
    time.sleep(args.before_backup)
    lsn_before = current_lsn(server)
    backup_started = time.monotonic()
    subprocess.run(  # noqa: S603 (our own command line)
        [
            str(server.bin / "pg_basebackup"),
            f"--dbname={libpq(server.url)}",
            f"--pgdata={base}",
            "--checkpoint=fast",
            "--wal-method=stream",
        ],
        check=True,
        capture_output=True,
        timeout=3600,
        **server._run_as,
    )
    backup_done = time.monotonic()
    backup_wall = datetime.now(UTC)
    print(
        f"pg_basebackup under load: {backup_done - backup_started:.1f} s, "
        f"{du_bytes(base) / MB:,.0f} MB ({len(load.acknowledged):,} publications so far)"
    )
    time.sleep(args.after_backup)
    lsn_at_loss = current_lsn(server)
    server.kill()
    lost_at = time.monotonic()
    lost_wall = datetime.now(UTC)
    with load.lock:
        before_loss = [item for item in load.acknowledged if item.at < lost_at]
    wal_rate = (lsn_bytes(lsn_at_loss) - lsn_bytes(lsn_before)) / (lost_at - backup_started)
    shutil.rmtree(server.data)
    archived = sorted(
        path for path in archive.iterdir() if re.fullmatch(r"[0-9A-F]{24}", path.name)
    )
    newest = max((path.stat().st_mtime for path in archived), default=0.0)
    print(
        f"server killed (SIGKILL, data directory removed) {lost_at - started:.0f} s into the "
        f"load: {len(before_loss):,} publications acknowledged before "
        f"({len(before_loss) / (lost_at - started):.0f}/s); WAL written at "
        f"{wal_rate / MB:.2f} MB/s; {len(archived)} segments archived, the newest "
        f"{lost_wall.timestamp() - newest:.0f} s before the loss"
    )
    time.sleep(3)  # the senders keep trying: refused now
    load.stop.set()
    print(f"  {load.refused} requests refused or unanswered while the server was gone")

    full = restore(server, base, archive, ebox, port, args.sample, "to the end of the archive")
    tickets = {item.ticket for item in before_loss}
    lost = [item for item in before_loss if item.ticket not in full.found]
    extra = full.found - tickets
    lost_seconds = lost_at - min(item.at for item in lost) if lost else 0.0
    kept_until = max((item.at for item in before_loss if item.ticket in full.found), default=0)
    segment_fill = 16 * 1024 * 1024 / wal_rate if wal_rate else float("inf")
    print(
        f"a segment fills in {segment_fill:.0f} s at this load: the archive is at most "
        f"{min(segment_fill, args.archive_timeout):.0f} s behind (archive_timeout "
        f"{args.archive_timeout} s, or a full segment, whichever comes first)"
    )
    print(
        f"RPO measured: {len(lost):,} of {len(before_loss):,} acknowledged publications lost, "
        f"those of the last {lost_seconds:.1f} s before the loss (the newest one kept was "
        f"acknowledged {lost_at - kept_until:.1f} s before it); {len(extra)} found that were "
        f"never acknowledged; archive_timeout {args.archive_timeout} s"
    )

    halfway = backup_wall + (lost_wall - backup_wall) / 2
    half = restore(
        server,
        base,
        archive,
        ebox,
        port,
        args.sample,
        f"to {halfway:%H:%M:%S} UTC, halfway",
        target=halfway,
    )
    expected = {item.ticket for item in before_loss if item.wall <= halfway}
    print(
        f"  halfway restore: {len(half.found & expected):,} of {len(expected):,} publications "
        f"acknowledged before the target found, {len(half.found - expected)} more"
    )
    print(
        "\n| restore | WAL replayed | segments | copy | redo | start to promoted | /readyz "
        "| restore-check | RTO |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for recovery in (half, full):
        print(
            f"| {recovery.label} | {recovery.wal_bytes / MB:,.0f} MB | {recovery.segments} | "
            f"{recovery.copy:.1f} s | {recovery.redo:.1f} s | {recovery.replay:.1f} s | "
            f"{recovery.ready:.1f} s | "
            f"{recovery.check:.1f} s | {recovery.total:.1f} s |"
        )
    if full.redo:
        rate = full.wal_bytes / full.redo
        print(
            f"redo: {rate / MB:.0f} MB of WAL per second, {GB / rate:.0f} s per GB; at this "
            f"load {wal_rate * SECONDS_PER_DAY / GB:.0f} GB of WAL a day, "
            f"{wal_rate * SECONDS_PER_DAY / rate / 60:.0f} minutes of redo per day since the "
            "base backup"
        )


def current_lsn(server: Cluster) -> str:
    with psycopg.connect(libpq(server.url)) as connection:
        value = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert value is not None
    return str(value[0])


def lsn_bytes(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def restore(
    server: Cluster,
    base: Path,
    archive: Path,
    ebox: Settings,
    port: int,
    sample: int,
    label: str,
    target: datetime | None = None,
) -> Recovery:
    """The base backup copied into place, the archive replayed, the server promoted; timed until
    eBox answers /readyz 200 and restore-check passes."""
    stop_quietly(server)
    shutil.rmtree(server.data, ignore_errors=True)
    recovery = Recovery(label)
    started = time.monotonic()
    shutil.copytree(base, server.data, symlinks=True)
    recovery.copy = time.monotonic() - started
    after_restore = server.directory.parent / f"archive-after-{server.starts + 1}"
    after_restore.mkdir()
    server.give_to_server(after_restore)
    settings = {
        "restore_command": f"'cp {archive}/%f %p'",
        "recovery_target_timeline": "'latest'",
        "archive_command": f"'test ! -f {after_restore}/%f && cp %p {after_restore}/%f'",
    }
    if target is not None:
        settings["recovery_target_time"] = f"'{target.isoformat()}'"
        settings["recovery_target_action"] = "'promote'"
    server.configure(settings)
    (server.data / "recovery.signal").touch()
    server.give_to_server(server.data)
    replaying = time.monotonic()
    server.start()
    with psycopg.connect(libpq(server.url), autocommit=True) as connection:
        while connection.execute("SELECT pg_is_in_recovery()").fetchone() != (False,):
            time.sleep(0.05)
    promoted = time.monotonic()
    recovery.replay = promoted - replaying
    while readyz(port) != 200:
        time.sleep(0.05)
    recovery.ready = time.monotonic() - promoted
    recovery.check, output = restore_check(ebox, sample)
    print(textwrap_indent(output))
    recovery.total = time.monotonic() - started
    log = server.log.read_text(errors="replace")
    starts = re.search(r"redo starts at ([0-9A-F]+/[0-9A-F]+)", log)
    done = re.search(r"redo done at ([0-9A-F]+/[0-9A-F]+).*elapsed: ([0-9.]+) s", log)
    if starts and done:
        recovery.wal_bytes = lsn_bytes(done.group(1)) - lsn_bytes(starts.group(1))
        recovery.redo = float(done.group(2))
    recovery.segments = len(re.findall(r"restored log file", log))
    with psycopg.connect(server.database_url("ebox").replace("+psycopg", "")) as connection:
        rows = connection.execute("SELECT sender_ticket FROM documents").fetchall()
    recovery.found = {str(row[0]) for row in rows}
    print(
        f"restore {label}: copy {recovery.copy:.1f} s, replay of {recovery.wal_bytes / MB:,.0f} "
        f"MB ({recovery.segments} segments from the archive; redo {recovery.redo:.1f} s) and "
        "promotion "
        f"{recovery.replay:.1f} s, /readyz 200 after {recovery.ready:.1f} s more, "
        f"restore-check --sample {sample} passed in {recovery.check:.1f} s: "
        f"RTO {recovery.total:.1f} s",
        flush=True,
    )
    return recovery


def readyz(port: int) -> int:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/readyz")
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return 0


if __name__ == "__main__":
    main()
