"""The audit log under concurrent writers on PostgreSQL: events/s, and how long writers wait.

    .venv/bin/python benchmarks/audit_chain.py [--writers 1,4,16] [--seconds 10] [--hold-ms 2]

Builds a fresh PostgreSQL database with the migrations (dropped at the end). Then, for each
number of writers, that many processes write audit events through record_event(), each in a
transaction of its own kept open --hold-ms after the event before its commit: what a
publication does between its audit event and its commit (on a quiet machine about 1-2 ms, more
when busy). Prints events/s, the latency of a transaction, how long writers waited to take a
chain (the statement that takes it: the advisory lock of the single chain, or FOR UPDATE SKIP
LOCKED of the chains), the share of PostgreSQL's sampled writer backends that were waiting on a
lock, and whether the whole log still verifies.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, text

from benchmarks.common import add_database_options, fresh_database
from ebox import create_app
from ebox.audit.services import Actor, record_event, verify_chain
from ebox.config import Settings
from ebox.extensions import db

ACTOR = Actor("sender", "1")
# The statements that take the chain, before (one advisory lock) and after (a free chain's row).
TAKING_A_CHAIN = ("pg_advisory_xact_lock", "FOR UPDATE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="1,4,16", help="writer processes, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed run per writer count")
    parser.add_argument("--hold-ms", type=float, default=2.0, help="transaction kept open")
    add_database_options(parser, "ebox_bench_audit_chain")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder,
        fresh_database(
            args.database_server, args.database, keep=args.keep_database
        ) as database_url,
    ):
        settings = _settings(Path(folder), database_url)
        app = create_app(settings)
        with app.app_context():
            upgrade()
        print(
            f"audit chain: {args.seconds:g} s per run, each transaction held {args.hold_ms:g} ms "
            f"after its event, fresh database {args.database}"
        )
        print(
            f"  {'writers':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'taking a chain ms':>18} {'waiting on a lock':>18}"
        )
        for writers in (int(number) for number in args.writers.split(",")):
            run(settings, writers, args.seconds, args.hold_ms / 1000)
        with app.app_context():
            problems = verify_chain()
            db.session.remove()
            db.engine.dispose()
        print(f"  the whole log verifies: {'yes' if not problems else problems[:5]}")


def _settings(folder: Path, database_url: str) -> Settings:
    return Settings(
        env="development",
        instance_path=folder / "instance",
        database_url=database_url,
        storage_path=str(folder / "documents"),
    )


@dataclass
class Totals:
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    taking_seconds: float = 0.0  # in the statement that takes a chain


def run(settings: Settings, writers: int, seconds: float, hold: float) -> None:
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    start = context.Event()
    processes = [
        context.Process(target=write, args=(settings, seconds, hold, start, results))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # imports and connections, before the clock starts
    sampler = LockSampler(settings.database_url)
    sampler.start()
    start.set()
    totals = Totals()
    for _ in processes:
        events, latencies, taking = results.get()
        totals.events += events
        totals.latencies.extend(latencies)
        totals.taking_seconds += taking
    sampler.stop()
    for process in processes:
        process.join()
    latencies = sorted(totals.latencies)
    print(
        f"  {writers:>7} {totals.events / seconds:>9.0f} {_percentile(latencies, 50):>7.1f} "
        f"{_percentile(latencies, 99):>7.1f} "
        f"{totals.taking_seconds / max(totals.events, 1) * 1000:>18.2f} "
        f"{sampler.waiting_share():>17.0%}"
    )


def write(settings: Settings, seconds: float, hold: float, start: Any, results: Any) -> None:
    """One writer process: events until the time is up; reports its counts to the parent."""
    app = create_app(settings)
    with app.app_context():
        taking = _time_taking_a_chain(app)
        record_event(ACTOR, "benchmark.warm", "writer", 0)
        db.session.commit()
        taking[0] = 0.0
        start.wait()
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            record_event(ACTOR, "benchmark.event", "writer", len(latencies), {"n": len(latencies)})
            time.sleep(hold)
            db.session.commit()
            latencies.append((time.perf_counter() - began) * 1000)
        results.put((len(latencies), latencies, taking[0]))


def _time_taking_a_chain(app: Flask) -> list[float]:
    """Seconds spent in the statements that take a chain (a list, so the listeners can add)."""
    total = [0.0]
    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if any(marker in statement for marker in TAKING_A_CHAIN):
            started[id(cursor)] = time.perf_counter()

    def after(_conn: Any, cursor: Any, *_args: Any) -> None:
        began = started.pop(id(cursor), None)
        if began is not None:
            total[0] += time.perf_counter() - began

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    return total


class LockSampler:
    """Samples pg_stat_activity every 5 ms: how many of the writers' backends wait on a lock."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
        self.samples = self.waiting = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join()
        self.engine.dispose()

    def waiting_share(self) -> float:
        return self.waiting / self.samples if self.samples else 0.0

    def _sample(self) -> None:
        query = text(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        with self.engine.connect() as connection:
            while self.running:
                waiting, backends = connection.execute(query).one()
                self.waiting += waiting
                self.samples += backends
                time.sleep(0.005)


def _percentile(ordered: list[float], p: int) -> float:
    if not ordered:
        return 0.0
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


if __name__ == "__main__":
    main()
