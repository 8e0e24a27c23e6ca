"""The inbox at national scale: pages over HTTP through gunicorn, beside their bare SQL.

    .venv/bin/python benchmarks/inbox.py [--reuse-database] [--keep-database]
        [--documents 10000000] [--citizens 2000000] [--big 5000] [--huge 100000]
        [--only typical,big,huge] [--requests 200] [--warmup 40] [--concurrency 8]
        [--throughput-requests 3000] [--workers 2] [--timeout 30] [--migrate-to REVISION]
        [--explain] [--profile 300]

Builds a PostgreSQL database (`ebox_bench_inbox`) with the migrations, then loads it with
set-based SQL: --citizens citizens and --documents documents published over the last three
years in time order, so that a citizen's documents lie far apart in the table. Each message
type has a lifetime (a month to three years); a document past it is a purged tombstone
(deleted_at set, title, keys and storage key erased), unless it expired within the last hour
(the purge runs hourly). 75 % are read, 6 % of the read ones archived, a few registered; 40
senders with two message types each, the popular ones more frequent. Three citizens are
measured: a typical one (about 5 documents), the big one (--big available documents, spread
over the three years among everybody else's) and the huge one (--huge). With
--reuse-database the database of an earlier run is used as it is (upgraded to the latest
migration first) and kept; otherwise it is dropped at the end unless --keep-database.
--migrate-to 0008 builds (or keeps) the schema as it was before the inbox's indexes, to
measure before and after migration 0009 on the same data (checkout the code of then, too).

Then, for each measured citizen, through the real session mechanism (a web_sessions row and
the signed cookie that names it), gunicorn serves eBox as in production
(`gunicorn -c python:ebox.gunicorn_conf app:app`, --workers sync workers) and a client asks
for each page --requests times, one request after another, after a warm-up long enough for
psycopg to prepare the statements and for PostgreSQL to settle on its plans: the first page,
page 50, a title search, the archive, a document page, and the first page's htmx fragment.
It prints p50/p95/p99 and the CPU spent per page by gunicorn's workers, by PostgreSQL's
backends serving them, by this client, and by everything else on the machine (other work
makes wall-clock figures noisy; CPU per page is steadier). Then --concurrency clients ask for
the big citizen's first page (--throughput-requests in all): pages per second.

Beside each page: its bare SQL. The statements the page ran (captured once, in this process,
with the Flask test client) are run again with psycopg alone on one connection, with the
same parameters, the same BEGIN/COMMIT and psycopg's default preparation, and timed
(median of --requests runs). And the floor: the same gunicorn settings serving a bare Flask
app that answers with bytes of the first page's size. The ratio printed is

    page p50 over HTTP / (bare SQL p50 of that page + floor p50)

i.e. how much eBox's Python (Flask, sessions, ORM, forms, templates) adds to the least any
web application serving that page's data would spend: 1.0 would be nothing.

--explain prints EXPLAIN (ANALYZE, BUFFERS) of each statement of the big citizen's pages, as
planned for its parameters and as the generic plan a prepared statement may switch to.
--profile N runs N first pages in this process under cProfile (the Flask test client, no
HTTP) and prints where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import math
import os
import pstats
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from benchmarks.common import free_port, settle
from ebox import create_app
from ebox.accounts.models import WebSession
from ebox.config import Settings
from ebox.extensions import db

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "inbox-benchmark-" + "k" * 32
SENDERS = 40
TYPES_PER_SENDER = 2
HTMX = {"HX-Request": "true"}
SEARCH = "pension"
CHECKPOINTS = (50, 95, 99)
TARGET_P95_MS = 25
TARGET_PAGES_PER_SECOND = 150
TARGET_RATIO = 1.5
TARGET_WORKER_MB = 160


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000_000)
    parser.add_argument("--citizens", type=int, default=2_000_000)
    parser.add_argument("--big", type=int, default=5_000, help="available documents, big one")
    parser.add_argument("--huge", type=int, default=100_000, help="the huge one (0: none)")
    parser.add_argument("--requests", type=int, default=200, help="per page, sequential")
    parser.add_argument("--warmup", type=int, default=40, help="untimed requests per page")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--throughput-requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument(
        "--timeout", type=int, default=30, help="gunicorn's worker timeout (its default: 30 s)"
    )
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument(
        "--only", default="", help="comma-separated citizens to measure: typical,big,huge"
    )
    parser.add_argument(
        "--database-server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--database", default="ebox_bench_inbox")
    parser.add_argument("--reuse-database", action="store_true")
    parser.add_argument(
        "--migrate-to",
        default="head",
        metavar="REVISION",
        help="build the schema up to this revision only (a later --reuse-database run "
        "upgrades the rest): to measure before and after a migration on the same data",
    )
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder_name,
        bench_database(args) as url,
    ):
        folder = Path(folder_name)
        settings = Settings(
            env="development",
            instance_path=folder / "instance",
            database_url=url,
            storage_path=str(folder / "documents"),
            redis_url="redis://127.0.0.1:6379/14",
            secret_key=SECRET_KEY,
        )
        app = create_app(settings)
        with app.app_context():
            upgrade(revision=args.migrate_to)
            if not args.reuse_database:
                build(args, url)
            citizens = measured_citizens(args)
            db.session.remove()
        print_machine(url)
        run(args, app, settings, folder, citizens)


# --- the database --------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(args: argparse.Namespace) -> Iterator[str]:
    """The benchmark's database: made anew, or an earlier run's (--reuse-database)."""
    admin = create_engine(args.database_server, isolation_level="AUTOCOMMIT")
    name = args.database
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if args.reuse_database and not exists:
            sys.exit(f"--reuse-database: there is no database {name} yet; run without it first")
        if not args.reuse_database:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    keep = args.keep_database or args.reuse_database
    try:
        yield make_url(args.database_server).set(database=name).render_as_string(False)
    finally:
        if keep:
            print(f"database {name} kept (--reuse-database to use it again)")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build(args: argparse.Namespace, url: str) -> None:
    started = time.perf_counter()
    make_senders()
    make_citizens(args.citizens + 2)
    db.session.commit()
    big_rows, huge_rows = rows_for(args.big, args.documents), rows_for(args.huge, args.documents)
    chunk = 500_000
    for first in range(0, args.documents, chunk):
        last = min(args.documents, first + chunk) - 1
        step = time.perf_counter()
        insert_documents(args, first, last, big_rows=big_rows, huge_rows=huge_rows)
        db.session.commit()
        print(f"  documents {first:,}..{last:,} in {time.perf_counter() - step:.0f} s", flush=True)
    settle(url)
    print(f"data built in {time.perf_counter() - started:.0f} s")


def rows_for(available: int, documents: int) -> int:
    """Rows to give a citizen so that about `available` of them are still available (the rest
    are tombstones): ALIVE_SHARE of all rows are, over three years of publications."""
    return min(documents, round(available / ALIVE_SHARE)) if available else 0


# Lifetimes by message type (index: type id % 10), so that about 2/3 of three years'
# documents are still available and the rest are tombstones: 10 % a month, 20 % a year,
# 30 % two years, 40 % three years.
LIFETIME_DAYS = (31, 365, 365, 730, 730, 730, 1096, 1096, 1096, 1096)
TYPES = SENDERS * TYPES_PER_SENDER
# A row's type is 1 + floor(TYPES * u^2) for a uniform u: the first types are the frequent ones.
ALIVE_SHARE = sum(
    (math.sqrt(t / TYPES) - math.sqrt((t - 1) / TYPES)) * LIFETIME_DAYS[t % 10] / 1096
    for t in range(1, TYPES + 1)
)
TITLES = (
    "Pension payment statement",
    "Your pension estimate",
    "Tax assessment notice",
    "Advance tax payment reminder",
    "Child benefit payment",
    "Family allowance decision",
    "Health insurance reimbursement",
    "Statement of medical expenses",
    "Unemployment benefit payment",
    "Job seeker registration confirmed",
    "Annual holiday pay statement",
    "Career overview update",
    "Invitation to a medical examination",
    "Disability benefit decision",
    "Sickness benefit payment",
    "Maternity leave benefit",
    "Parental leave decision",
    "Career break allowance",
    "Social security contributions certificate",
    "Self-employed contributions notice",
    "Annual tax certificate 281.10",
    "Property tax assessment",
    "Vehicle registration tax",
    "Change of address confirmed",
    "Residence certificate",
    "Study allowance decision",
    "Energy bonus payment",
    "Integration income decision",
    "Supplementary pension overview",
    "Pension rights: correction",
    "Employer certificate for the tax return",
    "Work accident compensation",
    "Occupational disease allowance",
    "Childcare cost certificate",
    "Reminder: document to return",
    "Social tariff for energy",
    "Housing premium decision",
    "Notice of payment schedule",
    "Request for additional information",
    "Annual benefit overview",
)
SENDER_NAMES = (
    "Federal Pension Service",
    "National Employment Office",
    "Federal Public Service Finance",
    "Family Allowance Fund",
    "Christian Health Insurance Fund",
    "Socialist Health Insurance Fund",
    "Liberal Health Insurance Fund",
    "Independent Health Insurance Fund",
    "Institute for Health and Disability Insurance",
    "Holiday Pay Fund",
)


def make_senders() -> None:
    """SENDERS institutions (one in four may send registered mail), two message types each."""
    db.session.execute(
        text(
            "INSERT INTO senders (id, name, enterprise_number, contact_email, contact_phone, "
            "contact_url, contact_address, is_active, may_send_registered, created_at) "
            "SELECT s, coalesce((CAST(:names AS text[]))[s], 'Public institution ' || s), "
            "lpad(s::text, 10, '0'), 'contact' || s || '@institution.example', "
            "'+32 2 000 00 ' || lpad(s::text, 2, '0'), "
            "'https://institution' || s || '.example/contact', 'Street ' || s || ', Brussels', "
            "true, s % 4 = 0, now() - interval '5 years' "
            "FROM generate_series(1, CAST(:senders AS integer)) s"
        ),
        {"senders": SENDERS, "names": list(SENDER_NAMES)},
    )
    db.session.execute(
        text(
            "INSERT INTO message_types (id, sender_id, code, name_nl, name_fr, name_de, "
            "name_en, validity_days) "
            "SELECT t, 1 + (t - 1) / CAST(:per_sender AS integer), 'TYPE' || t, 'Brief ' || t, "
            "'Lettre ' || t, 'Brief ' || t, 'Letter ' || t, "
            "(CAST(:lifetimes AS integer[]))[1 + t % 10] "
            "FROM generate_series(1, CAST(:types AS integer)) t"
        ),
        {"per_sender": TYPES_PER_SENDER, "types": TYPES, "lifetimes": list(LIFETIME_DAYS)},
    )
    db.session.execute(text("SELECT setval('senders_id_seq', :n)"), {"n": SENDERS})
    db.session.execute(text("SELECT setval('message_types_id_seq', :n)"), {"n": TYPES})


def make_citizens(count: int) -> None:
    """Citizens 1..count, all past their first visit; the last two are the big and the huge
    mailboxes' owners."""
    db.session.execute(
        text(
            "INSERT INTO citizens (id, national_number, given_name, surname, language, email, "
            "email_confirmed_at, conditions_accepted_at, is_electronic_only, created_at, "
            "last_login_at) "
            "SELECT g, lpad(g::text, 11, '0'), 'Name' || g, 'Surname', "
            "(ARRAY['nl', 'fr', 'de', 'en'])[1 + g % 4], 'citizen' || g || '@example.test', "
            "now() - interval '4 years', now() - interval '4 years', false, "
            "now() - interval '4 years', now() - interval '3 days' "
            "FROM generate_series(1, CAST(:count AS integer)) g"
        ),
        {"count": count},
    )
    db.session.execute(text("SELECT setval('citizens_id_seq', :count)"), {"count": count})


# Row i of the load, in publication order. u(k) is a pseudo-random fraction of i (a
# multiplicative hash), so every choice below is set-based and repeatable.
def _u(multiplier: int) -> str:
    return f"(((i * {multiplier}) % 4294967296)::float8 / 4294967296)"


# Only this file's own fragments are pasted in; every value is a bound parameter.
DOCUMENT_ROWS = f"""
WITH numbered AS (
    SELECT i,
           CASE WHEN :big_every > 0 AND i % :big_every = 0 THEN :citizens + 1
                WHEN :huge_every > 0 AND i % :huge_every = 1 THEN :citizens + 2
                ELSE 1 + (i * 7919) % :citizens END AS citizen,
           1 + floor({SENDERS * TYPES_PER_SENDER} * power({_u(2654435761)}, 2))::int AS type_id,
           :start + make_interval(secs => (i + 0.5) * :span_seconds / :documents) AS published
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
), dated AS (
    SELECT numbered.*, message_types.sender_id,
           published + make_interval(days => message_types.validity_days) AS expires,
           {_u(2246822519)} < 0.75 AS is_read,
           {_u(3266489917)} < 0.06 AS is_hidden,
           type_id % 20 = 8 AS is_registered
    FROM numbered JOIN message_types ON message_types.id = numbered.type_id
), stated AS (
    SELECT dated.*,
           expires <= :now - interval '1 hour' AS is_purged,
           CASE WHEN is_read THEN least(published + interval '9 hours', :now) END AS read
    FROM dated
)
INSERT INTO documents (id, sender_id, message_type_id, recipient_national_number,
    sender_ticket, sender_sequence, title, language, body_text, file_name, media_type,
    size_bytes, sha256, storage_key, content_key, content_key_id, is_registered,
    published_at, expires_at, read_at, hidden_at, deleted_at)
SELECT CAST(md5('document' || i) AS uuid), sender_id, type_id, lpad(citizen::text, 11, '0'),
       'T' || i, NULL,
       CASE WHEN NOT is_purged THEN (CAST(:titles AS text[]))[1 + (type_id - 1) % {len(TITLES)}]
            || ' ' || to_char(published, 'YYYY-MM') END,
       (ARRAY['nl', 'fr', 'de', 'en'])[1 + citizen % 4], NULL,
       CASE WHEN NOT is_purged THEN 'document.pdf' END, 'application/pdf', 104857,
       md5('content' || i) || md5('more' || i),
       CASE WHEN NOT is_purged THEN 'ab/cd/' || md5('document' || i) END,
       CASE WHEN NOT is_purged THEN decode(md5('key' || i) || md5('wrap' || i)
            || substr(md5('k' || i), 1, 16), 'hex') END,
       CASE WHEN NOT is_purged THEN 'k1' END,
       is_registered, published, expires, read,
       CASE WHEN is_read AND is_hidden THEN least(read + interval '1 day', :now) END,
       CASE WHEN is_purged THEN expires + interval '20 minutes' END
FROM stated
"""  # noqa: S608


def insert_documents(
    args: argparse.Namespace, first: int, last: int, *, big_rows: int, huge_rows: int
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    span_days = 1096
    db.session.execute(
        text(DOCUMENT_ROWS),
        {
            "first": first,
            "last": last,
            "documents": args.documents,
            "citizens": args.citizens,
            "big_every": args.documents // big_rows if big_rows else 0,
            "huge_every": args.documents // huge_rows if huge_rows else 0,
            "start": now - timedelta(days=span_days),
            "span_seconds": span_days * 86400,
            "now": now,
            "titles": list(TITLES),
        },
    )


@dataclass(frozen=True)
class Measured:
    label: str
    citizen_id: int
    national_number: str
    available: int
    rows: int
    document_ids: list[uuid.UUID]


def measured_citizens(args: argparse.Namespace) -> list[Measured]:
    """The typical, big and huge citizens as they are in the database."""
    last = db.session.scalar(text("SELECT max(id) FROM citizens")) or 0
    chosen = [("typical", 12_345), ("big", last - 1)]
    if args.huge:
        chosen.append(("huge", last))
    wanted = {name for name in args.only.split(",") if name}
    found = []
    for label, citizen_id in chosen:
        if wanted and label not in wanted:
            continue
        number = f"{citizen_id:011d}"
        row = db.session.execute(
            text(
                "SELECT count(*) AS rows, count(*) FILTER (WHERE deleted_at IS NULL "
                "AND expires_at > now() AT TIME ZONE 'UTC') AS available "
                "FROM documents WHERE recipient_national_number = :number"
            ),
            {"number": number},
        ).one()
        ids = db.session.scalars(
            text(
                "SELECT id FROM documents WHERE recipient_national_number = :number "
                "AND deleted_at IS NULL AND expires_at > now() AT TIME ZONE 'UTC' "
                "AND (read_at IS NOT NULL OR NOT is_registered) ORDER BY id LIMIT 200"
            ),
            {"number": number},
        ).all()
        found.append(Measured(label, citizen_id, number, row.available, row.rows, list(ids)))
    return found


def print_machine(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        documents = connection.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'documents'")
        )
        size = connection.scalar(
            text("SELECT pg_size_pretty(pg_database_size(current_database()))")
        )
        indexes = connection.execute(
            text(
                "SELECT indexrelid::regclass::text, pg_size_pretty(pg_relation_size(indexrelid)) "
                "FROM pg_index WHERE indrelid = 'documents'::regclass ORDER BY 1"
            )
        ).all()
    engine.dispose()
    load = os.getloadavg()
    print(
        f"\ndatabase: about {documents:,} documents, {size}; {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print("  indexes of documents: " + ", ".join(f"{name} {size}" for name, size in indexes))


# --- sessions ------------------------------------------------------------------------------


def session_cookies(app: Flask, citizen_id: int, count: int) -> list[str]:
    """count logged-in sessions of the citizen: a web_sessions row each, and the signed cookie
    naming it (with a CSRF secret already in it, as after a first page)."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookies = []
    with app.app_context():
        for _ in range(count):
            web_session = WebSession(citizen_id=citizen_id)
            db.session.add(web_session)
            db.session.flush()
            value = serializer.dumps(
                {"sid": str(web_session.id), "csrf_token": secrets.token_hex(20)}
            )
            cookies.append(f"{app.config['SESSION_COOKIE_NAME']}={value}")
        db.session.commit()
        db.session.remove()
    return cookies


def logged_in_client(app: Flask, cookie: str) -> FlaskClient:
    """A test client holding the session cookie (it ignores a Cookie header of its own)."""
    client = app.test_client()
    name, value = cookie.split("=", 1)
    client.set_cookie(name, value)
    return client


# --- pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageKind:
    label: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    marker: str = 'id="document-list"'

    def paths(self, citizen: Measured) -> Iterator[str]:
        if "{id}" not in self.path:
            while True:
                yield self.path
        while True:
            for document_id in citizen.document_ids:
                yield self.path.format(id=document_id)


PAGES = (
    PageKind("first page", "/"),
    PageKind("page 50", "/?page=50"),
    PageKind("search", f"/?q={SEARCH}"),
    PageKind("archive", "/?show=archive"),
    PageKind("document", "/documents/{id}", marker='id="document-title"'),
    PageKind("fragment", "/", HTMX, marker='class="list-title"'),
)


# --- the client ----------------------------------------------------------------------------


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    gunicorn_cpu: float = 0.0
    postgres_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_busy: float = 0.0
    machine_total: float = 0.0

    def ms(self, p: int) -> float:
        ordered = sorted(self.latencies)
        rank = max(1, -(-len(ordered) * p // 100))
        return ordered[rank - 1] * 1000 if ordered else float("nan")

    def cpu_ms(self, seconds: float) -> float:
        return seconds / len(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def rest_cpu(self) -> float:
        return self.machine_busy - self.gunicorn_cpu - self.postgres_cpu - self.client_cpu


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("GET", path, headers={"Accept-Language": "en", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def hammer(
    server: Server,
    database_url: str,
    jobs: Sequence[tuple[str, dict[str, str], str]],
    concurrency: int,
) -> Run:
    """Send each (path, headers, marker) with `concurrency` threads; time and check each."""
    run = Run()
    lock = threading.Lock()
    positions = iter(range(len(jobs)))

    def worker() -> None:
        while True:
            with lock:
                position = next(positions, None)
            if position is None:
                return
            path, headers, marker = jobs[position]
            started = time.perf_counter()
            try:
                status, body = get(server.port, path, headers)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    run.errors.append(f"{path}: {exc!r}")
                continue
            latency = time.perf_counter() - started
            with lock:
                if status == 200 and marker.encode() in body:
                    run.latencies.append(latency)
                else:
                    run.errors.append(f"{path}: HTTP {status} {body[:120]!r}")

    backends = postgres_backends(database_url)
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    gunicorn_before, postgres_before = tree_cpu(server.pid), pids_cpu(backends)
    client_before, (busy_before, total_before) = time.process_time(), machine_cpu()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    busy_after, total_after = machine_cpu()
    run.gunicorn_cpu = tree_cpu(server.pid) - gunicorn_before
    run.postgres_cpu = pids_cpu(backends) - postgres_before
    run.client_cpu = time.process_time() - client_before
    run.machine_busy, run.machine_total = busy_after - busy_before, total_after - total_before
    return run


def proc_cpu(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds) of a process from /proc; (0, 0.0) once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its children (gunicorn's master and workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        parent, seconds = proc_cpu(pid)
        if pid == root or parent == root:
            total += seconds
    return total


def pids_cpu(pids: Sequence[int]) -> float:
    return sum(proc_cpu(pid)[1] for pid in pids)


def postgres_backends(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database (gunicorn's pools)."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
    return [pid for (pid,) in rows]


def machine_cpu() -> tuple[float, float]:
    """CPU seconds of the whole machine, all cores: (busy, busy + idle)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:9]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def worker_rss_mb(root: int) -> list[float]:
    sizes = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        if proc_cpu(int(stat.parent.name))[0] != root:
            continue
        status = (stat.parent / "status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        if found:
            sizes.append(int(found.group(1)) / 1024)
    return sorted(sizes)


# --- gunicorn ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


@contextlib.contextmanager
def gunicorn(
    arguments: list[str], *, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *arguments]
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group: stopped with its workers
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                sys.exit(f"gunicorn stopped:\n{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError):
                if get(port, "/healthz", {})[0] == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit("gunicorn did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield Server(port, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def ebox_server(settings: Settings, args: argparse.Namespace, folder: Path) -> Any:
    env = {
        "EBOX_ENV": settings.env,
        "EBOX_INSTANCE_PATH": str(settings.instance_path),
        "EBOX_DATABASE_URL": settings.database_url,
        "EBOX_STORAGE_PATH": settings.storage_path,
        "EBOX_REDIS_URL": settings.redis_url,
        "EBOX_SECRET_KEY": SECRET_KEY,
    }
    arguments = ["-c", "python:ebox.gunicorn_conf", "--workers", str(args.workers), "app:app"]
    arguments[-1:-1] = ["--timeout", str(args.timeout)]
    return gunicorn(arguments, cwd=ROOT, env=env, log=folder / "gunicorn-ebox.log")


FLOOR_APP = '''
"""The floor: a bare Flask app answering with a fixed body of the size of an inbox page."""

import os

from flask import Flask
from flask.testing import FlaskClient

BODY = b"x" * int(os.environ["BENCH_FLOOR_SIZE"])
app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/")
def page():
    return BODY, 200, {"Content-Type": "text/html; charset=utf-8"}
'''


def floor_server(size: int, workers: int, folder: Path) -> Any:
    code = folder / "floor"
    code.mkdir(exist_ok=True)
    (code / "floor_app.py").write_text(textwrap.dedent(FLOOR_APP).lstrip())
    env = {"BENCH_FLOOR_SIZE": str(size)}
    arguments = ["--workers", str(workers), "floor_app:app"]
    return gunicorn(arguments, cwd=code, env=env, log=folder / "gunicorn-floor.log")


# --- bare SQL ------------------------------------------------------------------------------

Statement = tuple[str, Any]


def capture(app: Flask, cookie: str, path: str, headers: dict[str, str]) -> list[Statement]:
    """The statements one request for path runs, with their parameters, as psycopg got them."""
    with app.app_context():
        engine = db.engine
    statements: list[Statement] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    client = logged_in_client(app, cookie)
    event.listen(engine, "before_cursor_execute", keep)
    try:
        response = client.get(path, headers={"Accept-Language": "en", **headers})
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    if response.status_code != 200:
        sys.exit(f"capturing {path}: HTTP {response.status_code}")
    return statements


def bare_sql(
    database_url: str, statements: Sequence[Statement], runs: int, warmup: int = 20
) -> list[float]:
    """Seconds per run of the statements on one psycopg connection: BEGIN (implicit), each
    statement with its rows fetched, COMMIT; as a web request does, prepared alike."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    times = []
    with psycopg.connect(dsn) as connection:
        for number in range(runs + warmup):
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for statement, parameters in statements:
                    cursor.execute(statement, parameters)
                    if cursor.description is not None:
                        cursor.fetchall()
            connection.commit()
            if number >= warmup:
                times.append(time.perf_counter() - started)
    return times


# --- the run -------------------------------------------------------------------------------


@dataclass
class PageResult:
    citizen: str
    page: str
    run: Run
    bare: list[float]
    statements: int
    size: int


def run(
    args: argparse.Namespace,
    app: Flask,
    settings: Settings,
    folder: Path,
    citizens: list[Measured],
) -> None:
    for citizen in citizens:
        print(
            f"  {citizen.label} citizen: id {citizen.citizen_id}, {citizen.available:,} available "
            f"documents ({citizen.rows:,} rows with the tombstones)"
        )
    if args.profile:
        big = next(c for c in citizens if c.label == "big")
        profile(app, session_cookies(app, big.citizen_id, 1)[0], args.profile)
    results: list[PageResult] = []
    throughput: Run | None = None
    rss: list[float] = []
    with ebox_server(settings, args, folder) as server:
        for citizen in citizens:
            cookie = session_cookies(app, citizen.citizen_id, 1)[0]
            for kind in PAGES:
                results.append(measure_page(args, app, server, settings, citizen, kind, cookie))
                print_page(results[-1], None)
        if args.throughput_requests:
            throughput = measure_throughput(args, app, server, settings, citizens)
        rss = worker_rss_mb(server.pid)
    first = next(r for r in results if r.page == "first page")
    with floor_server(first.size, args.workers, folder) as floor:
        jobs = [("/", {}, "xxx")] * args.requests
        hammer(floor, settings.database_url, jobs[: args.warmup], 1)
        floor_run = hammer(floor, settings.database_url, jobs, 1)
    report(args, results, floor_run, throughput, rss)
    if args.explain:
        big = next((c for c in citizens if c.label == "big"), citizens[0])
        explain_pages(app, settings.database_url, big)


def measure_throughput(
    args: argparse.Namespace,
    app: Flask,
    server: Server,
    settings: Settings,
    citizens: list[Measured],
) -> Run:
    """--concurrency clients, each with a session of its own, ask for the big citizen's first
    page --throughput-requests times in all."""
    big = next((c for c in citizens if c.label == "big"), citizens[0])
    cookies = session_cookies(app, big.citizen_id, args.concurrency)
    jobs = [
        ("/", {"Cookie": cookies[n % len(cookies)]}, PAGES[0].marker)
        for n in range(args.throughput_requests)
    ]
    hammer(server, settings.database_url, jobs[: 20 * args.concurrency], args.concurrency)
    return hammer(server, settings.database_url, jobs, args.concurrency)


def measure_page(
    args: argparse.Namespace,
    app: Flask,
    server: Server,
    settings: Settings,
    citizen: Measured,
    kind: PageKind,
    cookie: str,
) -> PageResult:
    paths = kind.paths(citizen)
    headers = {"Cookie": cookie, **kind.headers}
    warmup = [(next(paths), headers, kind.marker) for _ in range(args.warmup)]
    hammer(server, settings.database_url, warmup, 1)
    jobs = [(next(paths), headers, kind.marker) for _ in range(args.requests)]
    measured = hammer(server, settings.database_url, jobs, 1)
    path = next(paths)
    statements = capture(app, cookie, path, kind.headers)
    _status, body = get(server.port, path, headers)
    bare = bare_sql(settings.database_url, statements, args.requests)
    return PageResult(citizen.label, kind.label, measured, bare, len(statements), len(body))


# --- report --------------------------------------------------------------------------------


def print_page(result: PageResult, floor_ms: float | None) -> None:
    run = result.run
    bare_ms = statistics.median(result.bare) * 1000
    ratio = ""
    if floor_ms is not None:
        ratio = f"  ratio {run.ms(50) / (bare_ms + floor_ms):4.1f}"
    busy = run.machine_busy / run.machine_total if run.machine_total else 0.0
    print(
        f"  {result.citizen:8} {result.page:11} p50 {run.ms(50):6.1f}  p95 {run.ms(95):6.1f}  "
        f"p99 {run.ms(99):6.1f} ms | CPU/page gunicorn {run.cpu_ms(run.gunicorn_cpu):5.1f} "
        f"PG {run.cpu_ms(run.postgres_cpu):5.1f} client {run.cpu_ms(run.client_cpu):4.1f} "
        f"rest {run.cpu_ms(run.rest_cpu):5.1f} ms (busy {busy:4.0%}) | bare SQL {bare_ms:5.2f} ms "
        f"({result.statements} statements) | {result.size / 1024:4.1f} kB{ratio}"
        + (f" | {len(run.errors)} ERRORS: {run.errors[:2]}" if run.errors else ""),
        flush=True,
    )


def report(
    args: argparse.Namespace,
    results: list[PageResult],
    floor: Run,
    throughput: Run | None,
    rss: list[float],
) -> None:
    floor_ms = floor.ms(50)
    print(
        f"\nfloor (bare Flask, same gunicorn, a body of the first page's size): p50 "
        f"{floor_ms:.2f} ms, p95 {floor.ms(95):.2f} ms, gunicorn CPU "
        f"{floor.cpu_ms(floor.gunicorn_cpu):.2f} ms per request"
    )
    print("\npages, one request after another (ratio = page p50 / (bare SQL p50 + floor p50)):")
    for result in results:
        print_page(result, floor_ms)
    if throughput is not None:
        busy = throughput.machine_busy / throughput.machine_total if throughput.machine_total else 0
        print(
            f"\nthroughput, big citizen's first page, {args.concurrency} clients, "
            f"{args.workers} workers: {throughput.per_second:.0f} pages/s "
            f"({len(throughput.latencies)} in {throughput.seconds:.1f} s), p50 "
            f"{throughput.ms(50):.0f} p95 {throughput.ms(95):.0f} p99 {throughput.ms(99):.0f} ms; "
            f"CPU per page: gunicorn {throughput.cpu_ms(throughput.gunicorn_cpu):.1f}, PostgreSQL "
            f"{throughput.cpu_ms(throughput.postgres_cpu):.1f}, client "
            f"{throughput.cpu_ms(throughput.client_cpu):.1f}, rest "
            f"{throughput.cpu_ms(throughput.rest_cpu):.1f} ms; machine busy {busy:.0%}"
            + (
                f"; {len(throughput.errors)} ERRORS {throughput.errors[:2]}"
                if throughput.errors
                else ""
            )
        )
    print(f"gunicorn RSS after the run (MB): {', '.join(f'{mb:.0f}' for mb in rss)}")
    first = next((r for r in results if r.citizen == "big" and r.page == "first page"), None)
    if first is None:
        return
    worst_ratio = max(r.run.ms(50) / (statistics.median(r.bare) * 1000 + floor_ms) for r in results)
    print("\ntargets:")
    print(f"  first page p95 {first.run.ms(95):.1f} ms (< {TARGET_P95_MS} ms)")
    if throughput is not None:
        print(
            f"  {throughput.per_second:.0f} pages/s at {args.concurrency} clients "
            f"(>= {TARGET_PAGES_PER_SECOND})"
        )
    print(f"  largest ratio {worst_ratio:.1f} (<= {TARGET_RATIO})")
    print(f"  largest worker RSS {max(rss, default=0):.0f} MB (< {TARGET_WORKER_MB} MB)")


# --- EXPLAIN -------------------------------------------------------------------------------

_NAMED = re.compile(r"%\((\w+)\)s")


def explain_pages(app: Flask, database_url: str, citizen: Measured) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement of the citizen's pages but the session's:
    as planned for the parameters, and the generic plan of the prepared statement."""
    cookie = session_cookies(app, citizen.citizen_id, 1)[0]
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    seen: set[str] = set()
    with psycopg.connect(dsn) as connection:
        for kind in PAGES:
            path = next(kind.paths(citizen))
            for statement, parameters in capture(app, cookie, path, kind.headers):
                if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue
                if "web_sessions" in statement or "FROM citizens" in statement:
                    continue
                if statement in seen:
                    continue
                seen.add(statement)
                print(f"\n--- {kind.label}: {' '.join(statement.split())[:600]}")
                for line in explain(connection, statement, parameters):
                    print(f"    {line}")
                connection.rollback()


def explain(connection: psycopg.Connection[Any], statement: str, parameters: Any) -> list[str]:
    lines = ["custom plan (for these parameters):"]
    rows = connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).fetchall()
    lines += [f"  {line}" for (line,) in rows]
    if not isinstance(parameters, dict) or not parameters:
        return lines
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    generic = _NAMED.sub(number, statement).replace("%%", "%")
    literals = psycopg.ClientCursor(connection).mogrify(
        ", ".join(["%s"] * len(names)), [parameters[name] for name in names]
    )
    connection.execute("DEALLOCATE ALL")
    connection.execute(f"PREPARE bench_generic AS {generic}")
    connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    rows = connection.execute(
        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic({literals})"
    ).fetchall()
    lines.append("generic plan (a prepared statement's, parameters unknown):")
    lines += [f"  {line}" for (line,) in rows]
    connection.execute("DEALLOCATE bench_generic")
    return lines


# --- profile -------------------------------------------------------------------------------


def profile(app: Flask, cookie: str, count: int) -> None:
    """count first pages in this process (Flask test client), under cProfile."""
    client = logged_in_client(app, cookie)
    headers = {"Accept-Language": "en"}
    for _ in range(20):
        client.get("/", headers=headers)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        client.get("/", headers=headers)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"\nprofile: {count} first pages in this process: {wall / count * 1000:.1f} ms each, "
        f"{cpu / count * 1000:.1f} ms of it CPU"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        client.get("/", headers=headers)
    profiler.disable()
    output = io.StringIO()
    stats = pstats.Stats(profiler, stream=output)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    print(output.getvalue())


if __name__ == "__main__":
    main()
