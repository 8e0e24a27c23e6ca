"""Prometheus metrics: what eBox counts, and `/metrics`, which answers internal addresses only.

No label carries personal data: labels name routes (Flask endpoints, never paths), SOAP
operations, fault codes, outcomes and states, all from fixed lists.

Under gunicorn several processes count: each writes its values to files in one directory
(prometheus_client's multiprocess mode), and `/metrics` adds up the files of every process.
gunicorn's master empties the directory of what dead processes left (ebox/gunicorn_conf.py),
and the RQ worker on the same machine writes to the same directory (worker.py), so one scrape
of any web process also gives the worker's counts. prometheus_client chooses between memory and
files when it is first imported, so it is imported only when a process first counts, after
use_directory().

What the database and Redis hold (alert deliveries by state, overdue proofs, the queue) is read
when Prometheus scrapes; a source that cannot be reached is reported as down, never as an error.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, request
from sqlalchemy import event
from sqlalchemy.pool import Pool

from ebox.config import Settings, current_settings

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: most pages answer in tens of milliseconds, a publication with a large document in
# seconds; gunicorn stops a request at 30.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def directory_for(settings: Settings) -> Path:
    """Where the processes of one machine write their values: under the instance path."""
    return settings.instance_path / "metrics"


def use_directory(directory: Path) -> None:
    """Count in files under directory from now on (gunicorn's processes, the worker)."""
    if _metrics is not None:
        raise RuntimeError("metrics were already counted in memory by this process")
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)


def clean_directory(directory: Path) -> int:
    """Remove the files of processes no longer running (gunicorn's start): what a stopped
    server counted starts again from zero, which Prometheus takes as a counter reset, while a
    worker still running on this machine keeps its files. Returns how many were removed."""
    removed = 0
    for path in directory.glob("*.db"):
        pid_text = path.stem.rsplit("_", 1)[-1]
        if pid_text.isdigit() and _is_running(int(pid_text)):
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_exited(pid: int) -> None:
    """A gunicorn worker ended: its share of the live gauges (connections in use) goes."""
    directory = os.environ.get(MULTIPROCESS_VARIABLE)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)


@dataclass(frozen=True)
class Metrics:
    soap_requests: Counter
    api_requests: Counter
    publications: Counter
    request_seconds: Histogram
    responses: Counter
    logins: Counter
    purged_documents: Counter
    purged_objects: Counter
    proofs_made: Counter
    webhook_deliveries: Counter
    connections_in_use: Gauge


_metrics: Metrics | None = None
_lock = threading.Lock()


def metrics() -> Metrics:
    """This process's metrics, made on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _create()
    return _metrics


def _create() -> Metrics:
    from prometheus_client import Counter, Gauge, Histogram

    return Metrics(
        soap_requests=Counter(
            "ebox_soap_requests",
            "SOAP requests answered, by operation and result (ok or the fault code)",
            ["operation", "result"],
        ),
        api_requests=Counter(
            "ebox_api_requests",
            "REST API calls answered, by endpoint and result (ok or the problem's code)",
            ["endpoint", "result"],
        ),
        publications=Counter(
            "ebox_publications",
            "Publication requests answered, by operation and result (ok or the fault code)",
            ["operation", "result"],
        ),
        request_seconds=Histogram(
            "ebox_request_duration_seconds",
            "Time to answer a request, by route (the Flask endpoint)",
            ["route"],
            buckets=LATENCY_BUCKETS,
        ),
        responses=Counter(
            "ebox_http_responses",
            "Responses by route and status class (2xx, 3xx, 4xx, 5xx)",
            ["route", "status_class"],
        ),
        logins=Counter("ebox_logins", "Citizen logins by outcome", ["outcome"]),
        purged_documents=Counter("ebox_purge_documents_deleted", "Expired documents deleted"),
        purged_objects=Counter(
            "ebox_purge_objects_removed", "Stored objects removed (expired or orphaned)"
        ),
        proofs_made=Counter("ebox_proofs_made", "Registered-mail proofs made"),
        webhook_deliveries=Counter(
            "ebox_webhook_deliveries",
            "Webhook deliveries by result: ok, failed (retried later) or disabled (the last try "
            "of a subscription failing for a day)",
            ["result"],
        ),
        connections_in_use=Gauge(
            "ebox_database_connections_in_use",
            "Database connections checked out of the pools of the running processes",
            multiprocess_mode="livesum",
        ),
    )


def route_of_request() -> str:
    return request.endpoint or "unmatched"


def observe_request(route: str, seconds: float, status: int) -> None:
    current = metrics()
    current.request_seconds.labels(route).observe(seconds)
    current.responses.labels(route, f"{status // 100}xx").inc()


def count_soap(operation: str, result: str, *, publishes: bool) -> None:
    current = metrics()
    current.soap_requests.labels(operation, result).inc()
    if publishes:
        current.publications.labels(operation, result).inc()


def count_api(endpoint: str, result: str) -> None:
    """A REST call by endpoint and result; a publication is counted with SOAP's too."""
    current = metrics()
    current.api_requests.labels(endpoint, result).inc()
    if endpoint == "api.publish_message":
        current.publications.labels("POST /api/v1/messages", result).inc()


def count_login(outcome: str) -> None:
    metrics().logins.labels(outcome).inc()


def count_purge(*, documents: int = 0, objects: int = 0) -> None:
    if documents:
        metrics().purged_documents.inc(documents)
    if objects:
        metrics().purged_objects.inc(objects)


def count_proof_made() -> None:
    metrics().proofs_made.inc()


def count_webhook_delivery(result: str) -> None:
    metrics().webhook_deliveries.labels(result).inc()


def _checked_out(*_args: Any) -> None:
    metrics().connections_in_use.inc()


def _checked_in(*_args: Any) -> None:
    metrics().connections_in_use.dec()


def watch_pools() -> None:
    """Follow every SQLAlchemy pool of this process: connections in use."""
    if not event.contains(Pool, "checkout", _checked_out):
        event.listen(Pool, "checkout", _checked_out)
        event.listen(Pool, "checkin", _checked_in)


class _ScrapeTimeCollector:
    """What the database and Redis hold, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "ebox_metrics_source_up",
            "Whether the last scrape could read the source (database, redis)",
            labels=["source"],
        )
        database = self._database()
        up.add_metric(["database"], 1 if database is not None else 0)
        if database is not None:
            deliveries, overdue = database
            family = GaugeMetricFamily(
                "ebox_alert_deliveries",
                "Today's alert deliveries by state",
                labels=["state"],
            )
            for state, count in deliveries.items():
                family.add_metric([state], count)
            yield family
            yield GaugeMetricFamily(
                "ebox_proofs_overdue",
                "Registered documents whose latest evidence has waited for its proof longer "
                "than the grace (15 minutes)",
                value=overdue,
            )
        queue = self._queue()
        up.add_metric(["redis"], 1 if queue is not None else 0)
        if queue is not None:
            for name, value, meaning in (
                ("ebox_queue_jobs_waiting", queue.waiting, "Jobs waiting in the queue"),
                ("ebox_queue_jobs_scheduled", queue.scheduled, "Jobs scheduled for later"),
                ("ebox_queue_jobs_failed", queue.failed, "Jobs out of retries (failed)"),
                ("ebox_queue_workers", queue.workers, "Workers registered on the queue"),
            ):
                yield GaugeMetricFamily(name, meaning, value=value)
        yield up

    @staticmethod
    def _database() -> tuple[dict[str, int], int] | None:
        from ebox import transactions
        from ebox.admin.queries import PROOF_GRACE
        from ebox.alerts.models import DELIVERY_STATUSES
        from ebox.alerts.services import delivery_counts, platform_today
        from ebox.db_types import utcnow
        from ebox.evidence.jobs import SWEEP_WINDOW
        from ebox.evidence.services import count_late_proofs

        now = utcnow()
        try:
            counts = delivery_counts(platform_today(now))
            overdue = count_late_proofs(now, window=SWEEP_WINDOW, grace=PROOF_GRACE)
            transactions.rollback()
        except Exception as error:
            transactions.rollback()
            log.warning("metrics: the database cannot be read (%s)", type(error).__name__)
            return None
        return {state: counts.get(state, 0) for state in DELIVERY_STATUSES}, overdue

    @staticmethod
    def _queue() -> Any:
        from ebox.jobs import queue_health

        return queue_health()


class _ThisProcess:
    """Single process (development, tests): the values counted in this process's memory."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()


bp = Blueprint("metrics", __name__)


def _allowed(address: str | None, networks: tuple[str, ...]) -> bool:
    if not address:
        return False
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(client in ipaddress.ip_network(network, strict=False) for network in networks)


@bp.get("/metrics")
def scrape() -> Response:
    if not _allowed(request.remote_addr, current_settings().metrics_networks):
        abort(404)  # like /admin: not advertised outside
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    metrics()  # every family is named from the first scrape on, at zero
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROCESS_VARIABLE):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_ScrapeTimeCollector())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
