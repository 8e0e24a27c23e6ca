"""Daily e-mail alert: citizens planned and enqueued per second, alerts sent per second, memory.

    .venv/bin/python benchmarks/alerts.py [--citizens 1000000] [--documents-per-citizen 5]
        [--scale 1] [--news-percent 100] [--expiring-percent 10] [--send 20000]
        [--tracemalloc] [--keep-database]

Builds a fresh PostgreSQL database with the migrations (dropped again at the end, unless
--keep-database) and fills it with set-based SQL: --citizens x --scale citizens (5% of them
without a confirmed address), --documents-per-citizen documents each, written one document
rank at a time so that a citizen's documents lie far apart in the table, as they do after years
of publications. Every citizen's previous alert went out a day ago. Of the citizens with an
address, --news-percent received a document since then that they have not read, and
--expiring-percent have an unread one that will now enter the deletion warning window; all the
others' documents are old, read or already announced.

Then a real RQ worker (ebox.jobs.AppWorker, burst mode, in this process) on a Redis database of
its own runs the day as production does: start_daily_alerts enqueues one planning job per range
of citizen ids, and each plan_alerts job writes its deliveries (one INSERT ... SELECT) and
enqueues them in sending batches. The worker stops once the planning jobs are done, which gives
"planned and enqueued per second", extrapolated to the target of 3 M citizens in < 15 minutes on
one worker. The same worker then runs the first sending jobs (--send deliveries) against an SMTP
server on loopback in a process of its own that only counts what it accepts, which gives e-mails
per second. Time is split by stage (the functions the jobs call are timed where they are
looked up) and the plans PostgreSQL chose for the planning INSERT and the per-alert news query
are shown with EXPLAIN ANALYZE.

Memory: the peak resident size of this process (ru_maxrss) after each phase; run at two scales
(e.g. --scale 0.1 and --scale 1) to see that it does not grow with the number of citizens.
--tracemalloc also reports the peak Python allocation of the planning and of the sending phase
(slower).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from rq import Queue
from sqlalchemy import create_engine, event, text

from benchmarks.common import add_database_options, free_port, fresh_database
from ebox import create_app
from ebox.alerts import jobs as alert_jobs
from ebox.alerts import services
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
from ebox.mail import services as mail_services
from ebox.mail.services import Mailer

SENDERS = 12
TARGET_CITIZENS = 3_000_000
TARGET_MINUTES = 15
TARGET_MEMORY_MB = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--documents-per-citizen", type=int, default=5)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies --citizens (0.1 for a quick run)"
    )
    parser.add_argument(
        "--news-percent",
        type=int,
        default=100,
        help="citizens with an address who have an unread document since their last alert",
    )
    parser.add_argument(
        "--expiring-percent",
        type=int,
        default=10,
        help="citizens with an address who have an unread document soon deleted",
    )
    parser.add_argument("--send", type=int, default=20_000, help="deliveries sent (a sample)")
    parser.add_argument("--tracemalloc", action="store_true", help="peak Python allocation")
    parser.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    add_database_options(parser, "ebox_bench_alerts")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/10",
        help="the jobs' Redis: a database number nothing else uses (flushed)",
    )
    args = parser.parse_args()
    citizens = int(args.citizens * args.scale)
    if args.documents_per_citizen < 2:
        parser.error("--documents-per-citizen must be at least 2")

    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    with (
        tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder_name,
        smtp_sink() as (smtp_port, accepted),
        fresh_database(args.database_server, args.database, keep=args.keep_database) as url,
    ):
        folder = Path(folder_name)
        settings = Settings(
            env="development",
            instance_path=folder / "instance",
            database_url=url,
            storage_path=str(folder / "documents"),
            redis_url=args.redis_url,
            smtp_url=f"smtp://127.0.0.1:{smtp_port}",
            public_url="https://ebox.example.test",
        )
        app = create_app(settings)
        quiet_logging()
        try:
            with app.app_context():
                upgrade()
                started = time.perf_counter()
                make_citizens(citizens)
                make_documents(
                    citizens,
                    args.documents_per_citizen,
                    news_percent=args.news_percent,
                    expiring_percent=args.expiring_percent,
                )
                settle(url)
                print(
                    f"data: {citizens:,} citizens, {citizens * args.documents_per_citizen:,} "
                    f"documents, news for {args.news_percent}% and soon deleted for "
                    f"{args.expiring_percent}% of those with an address "
                    f"(built in {time.perf_counter() - started:.0f} s)"
                )
                db.session.remove()
            run_day(app, redis, citizens, accepted, args)
        finally:
            redis.flushdb()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


# --- the day ---------------------------------------------------------------------------------


def run_day(
    app: Flask, redis: Redis, citizens: int, accepted: Synchronized[int], args: Any
) -> None:
    day = services.platform_today()
    jobs = Queue(QUEUE, connection=redis)
    captured = capture_statements(app)
    print(f"peak RSS before the day: {peak_rss_mb():.0f} MB")

    # Planning: the day's first job and one per range of citizens; then the worker stops.
    with app.app_context():
        id_ranges = services.citizen_id_ranges()
        db.session.remove()
    ranges = len(id_ranges)
    jobs.enqueue(alert_jobs.start_daily_alerts, day.isoformat())
    stages = Stages()
    with stages.timing(PLANNING_STAGES), python_peak(args.tracemalloc) as planning_peak:
        started = time.perf_counter()
        work(app, redis, jobs=1 + ranges, name="plan")
        planning_seconds = time.perf_counter() - started
    failed = failures(jobs)
    with app.app_context():
        planned = sum(services.delivery_counts(day).values())
    send_jobs = jobs.count
    print(
        f"\nplanning: {ranges} ranges of {services.CHUNK_CITIZENS:,} citizen ids, "
        f"{planned:,} deliveries written, {send_jobs:,} sending jobs enqueued "
        f"in {planning_seconds:.1f} s"
    )
    print(
        f"  {citizens / planning_seconds:10,.0f} citizens planned and enqueued /s\n"
        f"  {planned / planning_seconds:10,.0f} deliveries written and enqueued /s"
    )
    stages.report(planning_seconds, rest="the rest (RQ worker and job bookkeeping)")
    growth = TARGET_CITIZENS / citizens
    # deliveries_to_send reads all of the day's deliveries planned so far (see its plan below),
    # so its k-th call takes about a + b * k: fitted here, summed over the target's ranges.
    scans = stages.durations[RANGE_IDS_STAGE]
    a, b = fit_line(scans)
    target_ranges = round(ranges * growth)
    growing = target_ranges * a + b * target_ranges * (target_ranges + 1) / 2
    minutes = ((planning_seconds - sum(scans)) * growth + growing) / 60
    print(f"  deliveries_to_send: {a * 1000:.1f} ms + {b * 1000:.2f} ms per range planned before")
    print(
        f"  {TARGET_CITIZENS / 1e6:.0f} M citizens on one worker, same share with news: "
        f"~{minutes:.1f} min (target < {TARGET_MINUTES} min; "
        f"~{planning_seconds * growth / 60:.1f} min if it were all linear)"
    )
    print(f"  peak RSS after planning: {peak_rss_mb():.0f} MB{planning_peak()}")
    if failed:
        print(f"  FAILED JOBS: {failed}")
    plans = []
    if args.explain:
        # The first planning job's INSERT, on the range it planned, before anything is sent.
        plans += explain(app, captured, PLANNING_INSERT, replan=(day, *id_ranges[0]))
        plans += explain(app, captured, RANGE_IDS)

    # Sending: the first jobs of the queue, each a batch of deliveries over one connection.
    batches = min(send_jobs, -(-args.send // services.SEND_BATCH))
    stages = Stages()
    with stages.timing(SENDING_STAGES), python_peak(args.tracemalloc) as sending_peak:
        started = time.perf_counter()
        work(app, redis, jobs=batches, name="send")
        sending_seconds = time.perf_counter() - started
    failed = failures(jobs)
    with app.app_context():
        counts = services.delivery_counts(day)
        db.session.remove()
    mails = accepted.value
    print(
        f"\nsending: {batches} jobs, {mails:,} e-mails accepted by the SMTP server "
        f"in {sending_seconds:.1f} s; deliveries now {dict(sorted(counts.items()))}"
    )
    rate = mails / sending_seconds if sending_seconds else 0.0
    print(f"  {rate:10,.1f} e-mails sent /s on one worker")
    stages.report(sending_seconds, rest="the rest (citizen row, RQ, connecting)")
    if rate:
        print(
            f"  all {planned:,} of the day on one worker: ~{planned / rate / 3600:.1f} h; "
            f"{TARGET_CITIZENS / 1e6:.0f} M alerts: ~{TARGET_CITIZENS / rate / 3600:.1f} h"
        )
    print(f"  peak RSS after sending: {peak_rss_mb():.0f} MB{sending_peak()}")
    if failed:
        print(f"  FAILED JOBS: {failed}")
    print(
        f"\npeak RSS of this process (planning + sending, {citizens:,} citizens): "
        f"{peak_rss_mb():.0f} MB (target < {TARGET_MEMORY_MB} MB)"
    )
    if args.explain:
        plans += explain(app, captured, NEWS_QUERY)

    for line in plans:
        print(line)


def fit_line(values: list[float]) -> tuple[float, float]:
    """a, b of the least-squares line value = a + b * k through (1, values[0]), (2, ...)."""
    if len(values) < 2:
        return (values[0] if values else 0.0), 0.0
    count = len(values)
    mean_k = (count + 1) / 2
    mean_value = sum(values) / count
    spread = sum((k - mean_k) ** 2 for k in range(1, count + 1))
    b = sum((k - mean_k) * (v - mean_value) for k, v in enumerate(values, start=1)) / spread
    if b <= 0:  # no growth to be seen (few ranges, noise): a constant
        return mean_value, 0.0
    return mean_value - b * mean_k, b


def work(app: Flask, redis: Redis, *, jobs: int, name: str) -> None:
    """Run the next `jobs` jobs of the queue in a real eBox worker, then stop."""
    worker = AppWorker(
        [Queue(QUEUE, connection=redis)],
        connection=redis,
        app=app,
        name=f"bench-{name}-{time.monotonic_ns()}",
    )
    worker.work(burst=True, max_jobs=jobs, logging_level="WARNING")


def failures(jobs: Queue) -> list[str]:
    registry = jobs.failed_job_registry
    found = []
    for job_id in registry.get_job_ids():
        job = jobs.fetch_job(job_id)
        info = (job.latest_result().exc_string or "") if job and job.latest_result() else ""
        found.append(f"{job_id}: {info.strip().splitlines()[-1:] or '?'}")
        registry.remove(job_id)
    return found


# --- where the time goes ---------------------------------------------------------------------

# (label, module or class, attribute): each is called through that attribute by the jobs.
RANGE_IDS_STAGE = "deliveries_to_send (ids of the range)"
PLANNING_STAGES = (
    ("start_run (insert or read the day's run)", services, "start_run"),
    ("plan_range (INSERT ... SELECT)", services, "plan_range"),
    (RANGE_IDS_STAGE, services, "deliveries_to_send"),
    ("enqueue (RQ, Redis)", Queue, "enqueue"),
)
SENDING_STAGES = (
    ("claim (read, lock, checks, UPDATE, commit)", services, "_claim"),
    ("news_of (3 queries)", services, "news_of"),
    ("render_alert (2 templates)", services, "render_alert"),
    ("Mailer.send", Mailer, "send"),
    ("  build_message (EmailMessage)", mail_services, "build_message"),
    ("  SMTP (MAIL, RCPT, DATA)", Mailer, "_deliver"),
    ("finish (outcome and watermarks, commit)", services, "_finish"),
)


class Stages:
    """Seconds spent in each timed function, and the calls made."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.durations: dict[str, list[float]] = {}
        self.order: list[str] = []

    @contextlib.contextmanager
    def timing(self, stages: tuple[tuple[str, Any, str], ...]) -> Iterator[None]:
        originals = []
        for label, owner, name in stages:
            original = getattr(owner, name)
            originals.append((owner, name, original))
            setattr(owner, name, self._timed(label, original))
            self.order.append(label)
        try:
            yield
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)

    def _timed(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
                if isinstance(result, Iterator):
                    result = iter(list(result))  # a generator runs its queries when consumed
                return result
            finally:
                seconds = time.perf_counter() - started
                self.seconds[label] += seconds
                self.calls[label] += 1
                self.durations.setdefault(label, []).append(seconds)

        return wrapper

    def report(self, total: float, rest: str) -> None:
        width = max(len(label) for label in [*self.order, rest])
        for label in self.order:
            seconds, calls = self.seconds[label], self.calls[label]
            each = seconds / calls * 1000 if calls else 0.0
            print(
                f"    {label:{width}} {seconds:8.1f} s {seconds / total:5.0%}  "
                f"{calls:>9,} calls, {each:7.2f} ms each"
            )
        # An indented label is part of the one above it: not counted twice.
        left = total - sum(self.seconds[label] for label in self.order if label[0] != " ")
        print(f"    {rest:{width}} {left:8.1f} s {left / total:5.0%}")


# --- EXPLAIN ---------------------------------------------------------------------------------

PLANNING_INSERT = "planning INSERT (the first range)"
RANGE_IDS = "deliveries_to_send: the ids of a range (the first)"
NEWS_QUERY = "news_of: documents by sender (the first alert)"
WATCHED = {
    PLANNING_INSERT: "INSERT INTO alert_deliveries",
    RANGE_IDS: "SELECT alert_deliveries.id",
    NEWS_QUERY: "SELECT senders.name",
}


def capture_statements(app: Flask) -> dict[str, tuple[str, Any]]:
    """The first statement of each kind in WATCHED, with its parameters, as it was sent."""
    captured: dict[str, tuple[str, Any]] = {}
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        for label, start in WATCHED.items():
            if label not in captured and statement.lstrip().startswith(start):
                captured[label] = (statement, parameters)

    return captured


def explain(
    app: Flask,
    captured: dict[str, tuple[str, Any]],
    label: str,
    *,
    replan: tuple[Any, int, int] | None = None,
) -> list[str]:
    """The plan of a captured statement, run again under EXPLAIN ANALYZE and rolled back.
    replan (day, first id, end id): the range the captured INSERT planned; its deliveries are
    deleted first (in the same transaction) so that the INSERT writes them again."""
    if label not in captured:
        return []
    statement, parameters = captured[label]
    with app.app_context(), db.engine.connect() as connection, connection.begin() as transaction:
        if replan:
            day, first_id, end_id = replan
            connection.execute(
                text(
                    "DELETE FROM alert_deliveries WHERE day = :day "
                    "AND citizen_id >= :first AND citizen_id < :end"
                ),
                {"day": day, "first": first_id, "end": end_id},
            )
        rows = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
        ).all()
        transaction.rollback()
    return [f"\nEXPLAIN ANALYZE, {label}:", *(f"  {line}" for (line,) in rows)]


# --- data ------------------------------------------------------------------------------------


def make_senders(count: int) -> None:
    """Institutions and one message type each (documents need both)."""
    db.session.execute(
        text(
            "INSERT INTO senders (id, name, enterprise_number, contact_email, contact_phone, "
            "contact_url, contact_address, is_active, may_send_registered, created_at) "
            "SELECT s, 'Institution ' || s, lpad(s::text, 10, '0'), '', '', '', '', true, "
            "false, :now FROM generate_series(1, CAST(:count AS integer)) s"
        ),
        {"count": count, "now": naive(utcnow())},
    )
    db.session.execute(
        text(
            "INSERT INTO message_types (id, sender_id, code, name_nl, name_fr, name_de, "
            "name_en, validity_days) SELECT s, s, 'LETTER', 'Brief', 'Lettre', 'Brief', "
            "'Letter', 730 FROM generate_series(1, CAST(:count AS integer)) s"
        ),
        {"count": count},
    )
    db.session.commit()


def make_citizens(count: int) -> None:
    """Citizens 1..count; one in twenty without a confirmed address. The previous alert went
    out a day ago: news starts there, and deletions were announced up to 6 days from now."""
    now = naive(utcnow())
    db.session.execute(
        text(
            "INSERT INTO citizens (id, national_number, given_name, surname, language, email, "
            "email_confirmed_at, conditions_accepted_at, is_electronic_only, created_at, "
            "last_login_at, alerted_news_until, alerted_expiry_until) "
            "SELECT g, lpad(g::text, 11, '0'), 'Name' || g, 'Surname', "
            "(ARRAY['nl', 'fr', 'de', 'en'])[1 + g % 4], "
            "CASE WHEN g % 20 <> 0 THEN 'citizen' || g || '@example.test' END, "
            "CASE WHEN g % 20 <> 0 THEN CAST(:now AS timestamp) - interval '400 days' END, "
            "CAST(:now AS timestamp) - interval '400 days', false, "
            "CAST(:now AS timestamp) - interval '400 days', "
            "CAST(:now AS timestamp) - interval '3 days', "
            "CASE WHEN g % 20 <> 0 THEN CAST(:now AS timestamp) - interval '1 day' END, "
            "CASE WHEN g % 20 <> 0 THEN CAST(:now AS timestamp) + interval '6 days' END "
            "FROM generate_series(1, CAST(:count AS integer)) g"
        ),
        {"count": count, "now": now},
    )
    db.session.execute(text("SELECT setval('citizens_id_seq', :count)"), {"count": count})
    db.session.commit()


def make_documents(
    citizens: int, per_citizen: int, *, news_percent: int, expiring_percent: int
) -> None:
    """per_citizen documents for each citizen, one rank at a time (oldest first).

    The newest is news (published in the last 10 hours, unread) for news_percent of the
    citizens; the one before enters the deletion warning window (unread, deleted in 6 to 7
    days) for expiring_percent; every other document is months old and read, or unread but
    announced long ago.
    """
    make_senders(SENDERS)
    now = naive(utcnow())
    for rank in range(1, per_citizen + 1):
        newest = rank == per_citizen
        expiring = rank == per_citizen - 1
        if newest:
            published = "CAST(:now AS timestamp) - make_interval(mins => 1 + g % 600)"
            expires = "CAST(:now AS timestamp) + interval '730 days'"
            read = "CASE WHEN g % 100 >= :news THEN CAST(:now AS timestamp) END"
        elif expiring:
            chosen = "g % 100 < :expiring"
            published = (
                f"CASE WHEN {chosen} THEN CAST(:now AS timestamp) - interval '173 days' "
                "ELSE CAST(:now AS timestamp) - make_interval(days => rank * 40 + g % 30) END"
            )
            expires = (
                f"CASE WHEN {chosen} THEN CAST(:now AS timestamp) + interval '6 days' "
                "+ make_interval(mins => 1 + g % 1380) "
                "ELSE CAST(:now AS timestamp) + interval '700 days' END"
            )
            read = (
                f"CASE WHEN NOT ({chosen}) AND (g + rank) % 3 <> 0 "
                "THEN CAST(:now AS timestamp) - interval '20 days' END"
            )
        else:
            published = "CAST(:now AS timestamp) - make_interval(days => rank * 40 + g % 30)"
            expires = "CAST(:now AS timestamp) + interval '500 days'"
            read = (
                "CASE WHEN (g + rank) % 3 <> 0 "
                "THEN CAST(:now AS timestamp) - make_interval(days => rank * 30) END"
            )
        started = time.perf_counter()
        insert_documents(
            citizens,
            rank,
            now,
            published=published,
            expires=expires,
            read=read,
            parameters={"news": news_percent, "expiring": expiring_percent},
        )
        print(
            f"  documents of rank {rank}: {citizens:,} rows "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )


INSERT_DOCUMENT = (
    "INSERT INTO documents (id, sender_id, message_type_id, recipient_national_number, "
    "sender_ticket, sender_sequence, title, language, body_text, file_name, media_type, "
    "size_bytes, sha256, storage_key, content_key, content_key_id, is_registered, "
    "published_at, expires_at, read_at, hidden_at, deleted_at)"
)
# Citizen g's document of a rank: its id (a UUID made of rank and g) is `key`, which also
# makes its storage key. Every fragment below may use g, rank and key.
NUMBERED_CITIZENS = (
    "(SELECT g, rank, lpad(to_hex(rank), 8, '0') || lpad(to_hex(g), 24, '0') AS key "
    "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g, "
    "(VALUES (CAST(:rank AS integer))) AS fixed (rank)) AS numbered"
)
DOCUMENT_COLUMNS = (
    "CAST(key AS uuid), 1 + (g + rank) % :senders, 1 + (g + rank) % :senders, "
    "lpad(g::text, 11, '0'), 'T' || rank || '-' || g, NULL, "
    "'Your statement for period ' || rank || ' of this year', "
    "(ARRAY['nl', 'fr', 'de', 'en'])[1 + g % 4], NULL, 'statement.pdf', "
    "'application/pdf', 104857, md5(key) || md5(g::text)"
)
STORAGE_COLUMNS = (
    "substr(key, 1, 2) || '/' || substr(key, 3, 2) || '/' || key, "
    "decode(md5(key) || md5(g::text) || substr(md5(key), 1, 16), 'hex'), 'k1'"
)


def insert_documents(
    citizens: int,
    rank: int,
    now: datetime,
    *,
    published: str,
    expires: str,
    read: str,
    first: int = 1,
    with_keys: bool = True,
    parameters: dict[str, Any] | None = None,
) -> None:
    """One document for each citizen first..citizens, of the given rank, set-based.

    published, expires and read are SQL expressions over g (the citizen id), :now, rank and
    the named parameters.
    The row looks like a published one: title, file name, wrapped key, a storage key of the
    shape eBox makes (whether an object exists under it is the caller's business).
    """
    keys = STORAGE_COLUMNS if with_keys else "NULL, NULL, NULL"
    values = ", ".join([DOCUMENT_COLUMNS, keys, "false", published, expires, read, "NULL, NULL"])
    # Only this file's own SQL fragments are pasted in; every value is a bound parameter.
    statement = f"{INSERT_DOCUMENT} SELECT {values} FROM {NUMBERED_CITIZENS}"  # noqa: S608
    db.session.execute(
        text(statement),
        {
            "rank": rank,
            "senders": SENDERS,
            "now": now,
            "first": first,
            "last": citizens,
            **(parameters or {}),
        },
    )
    db.session.commit()


def settle(url: str) -> None:
    """What a production database has after the fact: statistics, a visibility map, and no
    checkpoint of the load pending during the measurement."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(text("VACUUM (ANALYZE)"))
        connection.execute(text("CHECKPOINT"))
    engine.dispose()
    print(f"  VACUUM ANALYZE + CHECKPOINT in {time.perf_counter() - started:.0f} s")


def naive(moment: datetime) -> datetime:
    """UTC without a zone: how eBox stores moments (ebox.db_types.UTCDateTime)."""
    return moment.replace(tzinfo=None)


# --- surroundings ----------------------------------------------------------------------------


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[int, Synchronized[int]]]:
    """An SMTP server on loopback, in a process of its own, that counts the messages it takes."""
    context = multiprocessing.get_context("spawn")
    port = free_port()
    accepted: Synchronized[int] = context.Value("q", 0)
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=serve_smtp, args=(port, accepted, ready, stop), daemon=True)
    process.start()
    if not ready.wait(30):
        process.kill()
        raise RuntimeError("the SMTP server did not start")
    try:
        yield port, accepted
    finally:
        stop.set()
        process.join(10)


def serve_smtp(port: int, accepted: Synchronized[int], ready: Event, stop: Event) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with accepted.get_lock():
                accepted.value += 1
            return "250 Message accepted for delivery"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def quiet_logging() -> None:
    """One line per mail and per stored object would be measured too: warnings only."""
    logging.getLogger().setLevel(logging.WARNING)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


@contextlib.contextmanager
def python_peak(enabled: bool) -> Iterator[Callable[[], str]]:
    """With tracemalloc on, the peak Python allocation of the block, as a suffix to print."""
    peak: list[int] = []
    if enabled:
        tracemalloc.start()
    try:
        yield lambda: f", peak Python allocation {peak[0] / 1024 / 1024:.1f} MB" if peak else ""
    finally:
        if enabled:
            peak.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()


if __name__ == "__main__":
    main()
