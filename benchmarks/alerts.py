"""Daily e-mail alert: citizens planned and enqueued per second, e-mails sent per second by 1, 2
... worker processes, CPU per e-mail, memory.

    .venv/bin/python benchmarks/alerts.py [--citizens 1000000] [--documents-per-citizen 5]
        [--scale 1] [--news-percent 100] [--expiring-percent 10] [--send 20000]
        [--workers 1 2] [--connections 4] [--window 100] [--no-stages] [--no-explain]
        [--tracemalloc] [--database-server URL] [--keep-database]

Builds a fresh PostgreSQL database with the migrations (dropped again at the end, unless
--keep-database) and fills it with set-based SQL: --citizens x --scale citizens (5% of them
without a confirmed address), --documents-per-citizen documents each, written one document
rank at a time so that a citizen's documents lie far apart in the table, as they do after years
of publications. Every citizen's previous alert went out a day ago. Of the citizens with an
address, --news-percent received a document since then that they have not read, and
--expiring-percent have an unread one that will now enter the deletion warning window; all the
others' documents are old, read or already announced.

Planning: a real RQ worker (ebox.jobs.AppWorker, burst mode, in this process) on a Redis server
of its own (a throw-away redis-server on a free loopback port) runs the day as production does:
start_daily_alerts enqueues one planning job per range of citizen ids, and each plan_alerts job
writes its deliveries (one INSERT ... SELECT) and enqueues them in sending jobs. That gives
"planned and enqueued per second", extrapolated to the target of 3 M citizens in < 15 minutes.

Sending: for each number N in --workers, N worker processes (AppWorker, as worker.py runs it,
each in a process of its own with the production logging) run the next --send deliveries'
sending jobs side by side, into an SMTP server on loopback in a process of its own that offers
PIPELINING, as mail servers do, and only counts what it accepts. Each phase prints e-mails per
second, and the CPU time per e-mail of the worker processes, of their PostgreSQL backends and of
the SMTP server (read from /proc: the machine is shared, so wall-clock rates are noisy), how
busy the machine was meanwhile (how much of it was other work, and how long cores sat idle
waiting for the disk), where a worker's time goes by stage (wall and CPU; --no-stages leaves
the timers out) and each worker's peak resident size. At the end: the rates and their ratios to
the first phase, the cores each phase kept busy, and the most the machine's cores could send at
that CPU cost. --connections and --window set ebox.alerts.services.SMTP_CONNECTIONS and
SEND_WINDOW in the workers; --database-server names another PostgreSQL server (one whose WAL
is in memory shows what waiting for the disk costs).

Then the plans PostgreSQL chose for the planning INSERT, a range's delivery ids, a window's
claim and its news query are shown with EXPLAIN ANALYZE. Memory: the peak resident size of this
process (planning) and of each worker; --tracemalloc also reports the peak Python allocation of
the planning (slower).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import multiprocessing
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from benchmarks.common import add_database_options, free_port, fresh_database, settle
from ebox import create_app, transactions
from ebox.alerts import claims, services
from ebox.alerts import jobs as alert_jobs
from ebox.alerts.letters import AlertLetters
from ebox.alerts.models import PLANNED, AlertDelivery
from ebox.config import Settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.jobs import QUEUE, AppWorker
from ebox.mail import services as mail_services
from ebox.mail import smtp as mail_smtp

SENDERS = 12
TARGET_CITIZENS = 3_000_000
TARGET_MINUTES = 15
TARGET_WORKERS = 4
TARGET_PER_WORKER = 1_000
TARGET_MEMORY_MB = 200
WORKER_NAME = "ebox-bench-worker"  # the workers' application_name on PostgreSQL
PARKED = "rq:queue:ebox-bench-parked"  # sending jobs waiting for their phase


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
    parser.add_argument("--send", type=int, default=20_000, help="deliveries sent per phase")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker processes, per phase"
    )
    parser.add_argument("--connections", type=int, default=services.SMTP_CONNECTIONS)
    parser.add_argument("--window", type=int, default=services.SEND_WINDOW)
    parser.add_argument("--stages", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tracemalloc", action="store_true", help="peak Python allocation")
    parser.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    add_database_options(parser, "ebox_bench_alerts")
    args = parser.parse_args()
    citizens = int(args.citizens * args.scale)
    if args.documents_per_citizen < 2:
        parser.error("--documents-per-citizen must be at least 2")

    with (
        tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder_name,
        redis_server(Path(folder_name)) as redis_url,
        smtp_sink() as sink,
        fresh_database(args.database_server, args.database, keep=args.keep_database) as url,
    ):
        folder = Path(folder_name)
        settings = Settings(
            env="development",
            instance_path=folder / "instance",
            database_url=url,
            storage_path=str(folder / "documents"),
            redis_url=redis_url,
            smtp_url=f"smtp://127.0.0.1:{sink.port}",
            public_url="https://ebox.example.test",
        )
        app = create_app(settings)
        quiet_logging()
        redis = Redis.from_url(redis_url)
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
            run_day(app, redis, sink, citizens, args)
        finally:
            redis.close()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


# --- the day ---------------------------------------------------------------------------------


def run_day(app: Flask, redis: Redis, sink: Sink, citizens: int, args: Any) -> None:
    day = services.platform_today()
    jobs = Queue(QUEUE, connection=redis)
    captured = capture_statements(app)
    print(f"peak RSS before the day: {peak_rss_mb():.0f} MB")
    id_ranges, planned = plan_day(app, redis, jobs, citizens, args)
    plans = []
    if args.explain:
        # The first planning job's INSERT, on the range it planned, before anything is sent.
        plans += explain(app, captured, PLANNING_INSERT, replan=(day, *id_ranges[0]))
        plans += explain(app, captured, RANGE_IDS)

    park(redis, jobs)
    phases = []
    for workers in args.workers:
        phases.append(send_phase(app, redis, jobs, sink, workers, args))
        print(f"  deliveries now {dict(sorted(counts_of(app, day).items()))}")
    report_phases(phases, planned)
    if args.explain:
        plans += explain_window(app, captured, day, args.window)
    for line in plans:
        print(line)


def plan_day(
    app: Flask, redis: Redis, jobs: Queue, citizens: int, args: Any
) -> tuple[list[tuple[int, int]], int]:
    """The day's first job and one per range of citizens, in this process; then it stops."""
    day = services.platform_today()
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
    planned = sum(counts_of(app, day).values())
    print(
        f"\nplanning: {ranges} ranges of {services.CHUNK_CITIZENS:,} citizen ids, "
        f"{planned:,} deliveries written, {jobs.count:,} sending jobs of "
        f"{services.SEND_BATCH:,} enqueued in {planning_seconds:.1f} s"
    )
    print(
        f"  {citizens / planning_seconds:10,.0f} citizens planned and enqueued /s\n"
        f"  {planned / planning_seconds:10,.0f} deliveries written and enqueued /s"
    )
    stages.report(planning_seconds, rest="the rest (RQ worker and job bookkeeping)")
    growth = TARGET_CITIZENS / citizens
    scans = stages.durations.get(RANGE_IDS_STAGE, [])
    print(
        f"  deliveries_to_send: first {scans[0] * 1000:.1f} ms, last {scans[-1] * 1000:.1f} ms"
        if scans
        else ""
    )
    print(
        f"  {TARGET_CITIZENS / 1e6:.0f} M citizens on one worker, same share with news: "
        f"~{planning_seconds * growth / 60:.1f} min (target < {TARGET_MINUTES} min)"
    )
    print(f"  peak RSS after planning: {peak_rss_mb():.0f} MB{planning_peak()}")
    if failed:
        print(f"  FAILED JOBS: {failed}")
    return id_ranges, planned


def counts_of(app: Flask, day: Any) -> dict[str, int]:
    with app.app_context():
        counts = services.delivery_counts(day)
        db.session.remove()
    return counts


def work(app: Flask, redis: Redis, *, jobs: int, name: str) -> None:
    """Run the next `jobs` jobs of the queue in a real eBox worker in this process, then stop."""
    worker = AppWorker(
        [Queue(QUEUE, connection=redis)],
        connection=redis,
        app=app,
        name=f"bench-{name}-{time.monotonic_ns()}",
    )
    worker.work(burst=True, max_jobs=jobs, logging_level="WARNING")


def failures(jobs: Queue) -> list[str]:
    """The jobs that failed, or failed and wait for a retry (removed, to be told once)."""
    registry = jobs.failed_job_registry
    found = [f"{job_id}: waits for a retry" for job_id in jobs.scheduled_job_registry.get_job_ids()]
    for job_id in jobs.scheduled_job_registry.get_job_ids():
        jobs.scheduled_job_registry.remove(job_id)
    for job_id in registry.get_job_ids():
        job = jobs.fetch_job(job_id)
        info = (job.latest_result().exc_string or "") if job and job.latest_result() else ""
        found.append(f"{job_id}: {info.strip().splitlines()[-1:] or '?'}")
        registry.remove(job_id)
    return found


def park(redis: Redis, jobs: Queue) -> None:
    """Set the sending jobs aside; each phase takes its share back into the queue."""
    redis.rename(jobs.key, PARKED)


def unpark(redis: Redis, jobs: Queue, count: int) -> int:
    ids = redis.lpop(PARKED, count) or []
    if ids:
        redis.rpush(jobs.key, *ids)
    return len(ids)


# --- sending, in worker processes ------------------------------------------------------------


@dataclass
class Phase:
    workers: int
    mails: int
    seconds: float
    # seconds: workers, postgresql, sink, others (the rest of the machine), disk wait (idle)
    cpu: dict[str, float]
    machine_busy: float  # cores busy on average
    load: float
    reports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.mails / self.seconds if self.seconds else 0.0

    def per_mail_ms(self, part: str) -> float:
        return self.cpu[part] / self.mails * 1000 if self.mails else 0.0


def send_phase(app: Flask, redis: Redis, jobs: Queue, sink: Sink, workers: int, args: Any) -> Phase:
    """The next --send deliveries' jobs, run by `workers` worker processes side by side."""
    batches = unpark(redis, jobs, -(-args.send // services.SEND_BATCH))
    settings = worker_settings(app.config["EBOX"])
    knobs = {"SMTP_CONNECTIONS": args.connections, "SEND_WINDOW": args.window}
    context = multiprocessing.get_context("spawn")
    ready, reports = context.Queue(), context.Queue()
    go, leave = context.Event(), context.Event()
    processes = [
        context.Process(
            target=worker_process,
            args=(settings, f"w{number}", knobs, args.stages, ready, go, reports, leave),
        )
        for number in range(1, workers + 1)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
        watched = {
            "workers": [p.pid for p in processes if p.pid],
            "postgresql": backends_of(app),
            "sink": [sink.pid],
        }
        before, machine_before, accepted_before = cpu_of(watched), machine_jiffies(), sink.count()
        started = time.perf_counter()
        go.set()
        done = collect(reports, processes, settings.instance_path)
        seconds = time.perf_counter() - started
        after, machine_after = cpu_of(watched), machine_jiffies()
    finally:
        leave.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    cpu = {part: (after[part] - before[part]) / CLOCK_TICKS for part in watched}
    busy = (machine_after[0] - machine_before[0]) / CLOCK_TICKS
    cpu["others"] = max(busy - sum(cpu.values()), 0.0)
    cpu["disk wait"] = (machine_after[1] - machine_before[1]) / CLOCK_TICKS
    phase = Phase(
        workers=workers,
        mails=sink.count() - accepted_before,
        seconds=seconds,
        cpu=cpu,
        machine_busy=busy / seconds,
        load=os.getloadavg()[0],
        reports=done,
    )
    report_phase(phase, batches, args)
    if failed := failures(jobs):
        print(f"  FAILED JOBS: {failed}")
        print(worker_errors(settings.instance_path))
    return phase


def worker_errors(folder: Path) -> str:
    """The end of the first worker log that tells of an error."""
    for log in sorted(folder.glob("worker-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        if any("Traceback" in line for line in lines):
            return "\n".join(f"  {line[:300]}" for line in lines[-25:])
    return ""


def collect(reports: Any, processes: list[Any], folder: Path) -> list[dict[str, Any]]:
    """Each worker's report; a worker that died without one stops the benchmark."""
    done: list[dict[str, Any]] = []
    while len(done) < len(processes):
        try:
            done.append(reports.get(timeout=1))
        except queue.Empty:
            if any(process.exitcode is not None for process in processes):
                raise RuntimeError(f"a worker died:\n{worker_errors(folder)}") from None
    return done


def worker_settings(settings: Settings) -> Settings:
    """The application's settings, with the workers' connections named on PostgreSQL."""
    url = make_url(settings.database_url).update_query_dict({"application_name": WORKER_NAME})
    return Settings(
        **{
            **settings.__dict__,
            "database_url": url.render_as_string(hide_password=False),
        }
    )


def worker_process(
    settings: Settings,
    name: str,
    knobs: dict[str, int],
    stages_on: bool,
    ready: Any,
    go: Event,
    reports: Any,
    leave: Event,
) -> None:
    """One eBox worker, as worker.py runs it, until the queue is empty; reports what it did."""
    log_file = settings.instance_path / f"worker-{name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        os.dup2(log.fileno(), 2)  # the production logging (INFO), kept out of the console
    app = create_app(settings)
    for attribute, value in knobs.items():
        setattr(services, attribute, value)
    with app.app_context():
        db.session.execute(text("SELECT 1"))  # the connection (and its backend) exist before
        db.session.remove()
    connection = Redis.from_url(settings.redis_url)
    worker = AppWorker(
        [Queue(QUEUE, connection=connection)], connection=connection, app=app, name=name
    )
    stages = Stages()
    ready.put(os.getpid())
    go.wait()
    with stages.timing(SENDING_STAGES if stages_on else ()):
        worker.work(burst=True, logging_level="INFO")
    reports.put(
        {
            "name": name,
            "peak_rss_mb": peak_rss_mb(),
            "seconds": dict(stages.seconds),
            "cpu": dict(stages.cpu_seconds),
            "calls": dict(stages.calls),
            "order": stages.order,
        }
    )
    leave.wait(600)


def report_phase(phase: Phase, batches: int, args: Any) -> None:
    per_worker = phase.rate / phase.workers
    workers = "1 worker" if phase.workers == 1 else f"{phase.workers} workers"
    print(
        f"\nsending, {workers} ({batches} jobs, {args.connections} SMTP connections and windows "
        f"of {args.window} per worker): {phase.mails:,} e-mails in {phase.seconds:.1f} s"
    )
    print(f"  {phase.rate:10,.0f} e-mails sent /s ({per_worker:,.0f} per worker)")
    parts = ("workers", "postgresql", "sink")
    print(
        "  CPU per e-mail: "
        + ", ".join(f"{part} {phase.per_mail_ms(part):.3f} ms" for part in parts)
        + f"; together {sum(phase.per_mail_ms(part) for part in parts):.3f} ms"
    )
    print(
        f"  the machine meanwhile: {phase.machine_busy:.2f} of {os.cpu_count()} cores busy, "
        f"{phase.cpu['others'] / phase.seconds:.2f} of them other work, "
        f"{phase.cpu['disk wait'] / phase.seconds:.2f} idle waiting for the disk; "
        f"load average {phase.load:.1f}"
    )
    if args.stages:
        report_stages(phase)
    rss = ", ".join(f"{r['peak_rss_mb']:.0f}" for r in phase.reports)
    print(f"  peak RSS per worker: {rss} MB (target < {TARGET_MEMORY_MB} MB)")


def report_stages(phase: Phase) -> None:
    """Where the workers' time goes, per e-mail, summed over the workers."""
    seconds: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    for report in phase.reports:
        seconds.update(report["seconds"])
        cpu.update(report["cpu"])
    order = phase.reports[0]["order"]
    width = max(len(label) for label in order)
    mails = phase.mails or 1
    worker_seconds = phase.seconds * phase.workers
    print(f"  where a worker's time goes, per e-mail ({'wall':>8} {'CPU':>8}):")
    for label in order:
        print(
            f"    {label:{width}} {seconds[label] / mails * 1000:8.3f} "
            f"{cpu[label] / mails * 1000:8.3f} ms"
        )
    outside = worker_seconds - sum(seconds[label] for label in order if label[0] != " ")
    print(f"    {'the rest (RQ, Redis, connecting)':{width}} {outside / mails * 1000:8.3f} ms")


def report_phases(phases: list[Phase], planned: int) -> None:
    print(
        "\n| workers | e-mails/s | per worker | CPU ms per e-mail: workers, PostgreSQL, sink "
        "| machine busy (others) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    first = next((phase for phase in phases if phase.workers == 1), phases[0])
    for phase in phases:
        cpu = ", ".join(f"{phase.per_mail_ms(p):.3f}" for p in ("workers", "postgresql", "sink"))
        print(
            f"| {phase.workers} | {phase.rate:,.0f} | {phase.rate / phase.workers:,.0f} | {cpu} "
            f"| {phase.machine_busy:.2f} ({phase.cpu['others'] / phase.seconds:.2f}) "
            f"| {phase.rate / first.rate:.2f}x |"
        )
    cores = os.cpu_count() or 1
    for phase in phases:
        cpu_ms = sum(phase.per_mail_ms(p) for p in ("workers", "postgresql", "sink"))
        ceiling = cores / cpu_ms * 1000 if cpu_ms else 0.0
        print(
            f"{phase.workers} worker(s): {phase.rate * cpu_ms / 1000:.2f} cores kept busy "
            f"(workers, their PostgreSQL backends, the sink); at {cpu_ms:.3f} ms of CPU per "
            f"e-mail, {cores} cores send at most {ceiling:,.0f}/s with nothing else running"
        )
    per_worker = first.rate / first.workers
    if per_worker:
        minutes = TARGET_CITIZENS / (per_worker * TARGET_WORKERS) / 60
        cpu_ms = sum(first.per_mail_ms(p) for p in ("workers", "postgresql", "sink"))
        print(
            f"\n{TARGET_CITIZENS / 1e6:.0f} M alerts on {TARGET_WORKERS} workers at "
            f"{per_worker:,.0f} e-mails/s each: ~{minutes:.1f} min (target < {TARGET_MINUTES} "
            f"min, >= {TARGET_PER_WORKER:,}/s per worker); CPU they need: "
            f"{TARGET_CITIZENS * cpu_ms / 1000 / 60:.0f} core-minutes; "
            f"all {planned:,} of this day on one worker: ~{planned / per_worker / 60:.1f} min"
        )


# --- CPU time, from /proc ---------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_jiffies(pid: int) -> int:
    """User and system time of a process so far, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def cpu_of(watched: dict[str, list[int]]) -> dict[str, int]:
    return {part: sum(process_jiffies(pid) for pid in pids) for part, pids in watched.items()}


def machine_jiffies() -> tuple[int, int]:
    """Busy time of all the machine's cores so far, and their time idle waiting for a disk."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], values[4]


def backends_of(app: Flask) -> list[int]:
    """The PostgreSQL backends serving the worker processes."""
    with app.app_context():
        pids = db.session.scalars(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": WORKER_NAME},
        ).all()
        db.session.remove()
    return list(pids)


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
    ("claim_window (lock, claim, news, commit)", services, "claim_window"),
    ("  alerts_to_send (the news query)", claims, "alerts_to_send"),
    ("compose (per e-mail)", AlertLetters, "compose"),
    ("  render (a kept frame, or 2 templates)", AlertLetters, "render"),
    ("  compose_message (MIME)", mail_services, "compose_message"),
    ("SMTP (replies, writes; waits)", mail_smtp._Connection, "step"),
    ("record_outcomes (lock, UPDATEs, commit)", services, "record_outcomes"),
    ("  commits of the two above (the claim's waits for the disk)", transactions, "commit"),
)


class Stages:
    """Seconds (wall and CPU) spent in each timed function, and the calls made."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.cpu_seconds: Counter[str] = Counter()
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
            started, started_cpu = time.perf_counter(), time.process_time()
            try:
                result = function(*args, **kwargs)
                if isinstance(result, Iterator):
                    result = iter(list(result))  # a generator runs its queries when consumed
                return result
            finally:
                seconds = time.perf_counter() - started
                self.seconds[label] += seconds
                self.cpu_seconds[label] += time.process_time() - started_cpu
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
CLAIM = "claim_window: the claim (a window of planned deliveries)"
NEWS_QUERY = "claim_window: the news of the window (alerts_to_send)"
WATCHED = {
    PLANNING_INSERT: ("INSERT INTO alert_deliveries", ""),
    RANGE_IDS: ("SELECT alert_deliveries.id", "ORDER BY"),
    CLAIM: ("UPDATE alert_deliveries", "claimed_at"),
    NEWS_QUERY: ("SELECT alert_deliveries.id, citizens.email", ""),
}


def capture_statements(app: Flask) -> dict[str, tuple[str, Any]]:
    """The first statement of each kind in WATCHED, with its parameters, as it was sent."""
    captured: dict[str, tuple[str, Any]] = {}
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        for label, (start, part) in WATCHED.items():
            seen = label in captured
            if not seen and statement.lstrip().startswith(start) and part in statement:
                captured[label] = (statement, parameters)

    return captured


def explain_window(
    app: Flask, captured: dict[str, tuple[str, Any]], day: Any, window: int
) -> list[str]:
    """A window of planned deliveries claimed in this process and rolled back, for its
    statements; then their plans (the claim on the rows still planned)."""
    with app.app_context():
        ids = db.session.scalars(
            select(AlertDelivery.id)
            .where(AlertDelivery.day == day, AlertDelivery.status == PLANNED)
            .order_by(AlertDelivery.id)
            .limit(window)
        ).all()
        if not ids:
            return []
        with patched(transactions, "commit", db.session.flush):
            services.claim_window(list(ids), services.SendOutcome())
        db.session.rollback()
        db.session.remove()
    return explain(app, captured, CLAIM) + explain(app, captured, NEWS_QUERY)


@contextlib.contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


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


def naive(moment: datetime) -> datetime:
    """UTC without a zone: how eBox stores moments (ebox.db_types.UTCDateTime)."""
    return moment.replace(tzinfo=None)


# --- surroundings ----------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of this run alone, on a free loopback port, without persistence."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is missing: scripts/services installs it"
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(  # noqa: S603 (our own arguments)
        [binary, *options, "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url, socket_connect_timeout=0.5)
        for _ in range(200):
            with contextlib.suppress(RedisConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Sink:
    port: int
    pid: int
    accepted: Synchronized[int]

    def count(self) -> int:
        return int(self.accepted.value)


@contextlib.contextmanager
def smtp_sink() -> Iterator[Sink]:
    """An SMTP server on loopback, in a process of its own, that counts the messages it takes."""
    context = multiprocessing.get_context("spawn")
    port = free_port()
    accepted: Synchronized[int] = context.Value("q", 0)
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=serve_smtp, args=(port, accepted, ready, stop), daemon=True)
    process.start()
    if not ready.wait(30) or process.pid is None:
        process.kill()
        raise RuntimeError("the SMTP server did not start")
    try:
        yield Sink(port=port, pid=process.pid, accepted=accepted)
    finally:
        stop.set()
        process.join(10)


def serve_smtp(port: int, accepted: Synchronized[int], ready: Event, stop: Event) -> None:
    """A lean SMTP server (asyncio): it offers PIPELINING, answers every command at once and
    keeps nothing of the messages, so that its own cost per message stays small and visible."""
    import asyncio

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkSession(accepted), "127.0.0.1", port)
        ready.set()
        await loop.run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(serve())


class SinkSession:
    """One client's SMTP session in the sink: commands line by line, DATA up to its end."""

    def __init__(self, accepted: Synchronized[int]) -> None:
        self.accepted = accepted
        self.buffer = b""
        self.in_data = False
        self.quitting = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while reply := self._next_reply():
            replies.append(reply)
        if replies:
            self.transport.write(b"".join(replies))
        if self.quitting:
            self.transport.close()

    def _next_reply(self) -> bytes:
        """The reply to the next complete command (or message) in the buffer, if any."""
        if self.in_data:
            if self.buffer.startswith(b".\r\n"):
                end = 3
            elif (found := self.buffer.find(b"\r\n.\r\n")) >= 0:
                end = found + 5
            else:
                return b""
            self.buffer = self.buffer[end:]
            self.in_data = False
            with self.accepted.get_lock():
                self.accepted.value += 1
            return b"250 accepted\r\n"
        line, found, self.buffer = self.buffer.partition(b"\r\n")
        if not found:
            self.buffer = line
            return b""
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        if verb == b"DATA":
            self.in_data = True
            return b"354 go ahead\r\n"
        if verb == b"QUIT":
            self.quitting = True
            return b"221 bye\r\n"
        return b"250 ok\r\n"

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None

    def eof_received(self) -> bool:
        return False


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
