"""Background jobs: the queue they go to and the worker that runs them in the application.

Jobs are plain functions named by their dotted path. The worker runs each one inside a fresh
application context (so each has its own database session) without forking: jobs here are many
and short, and a fork per job would cost more than most of them.

A worker that dies during a job (SIGKILL, a lost machine) is found out by RQ itself: when a job
starts, its worker's entry in Redis and the job's entry among the started ones are given a life
of the job's time-out plus EBOX_WORKER_GRACE_SECONDS. A worker that does not come back to
renew them by then is dead: its entry expires (it leaves `rq info`), and the next registry
cleaning of any worker (every EBOX_WORKER_MAINTENANCE_SECONDS) finds its job abandoned and
retries it when the job has retries left, or moves it to the failed registry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.job import Job, get_current_job

from ebox.config import current_settings
from ebox.log_config import bind_log_fields, log_field, new_request_id, sane_request_id
from ebox.redis_connection import redis_for_app

log = logging.getLogger(__name__)

QUEUE = "default"


class TracedQueue(Queue):
    """Jobs queued while a request (or a job) runs carry its request id in their meta: the
    worker puts it on the lines of the job, so one id follows a request into the worker."""

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        request_id = log_field("request_id")
        if request_id is not None:
            kwargs["meta"] = {"request_id": request_id, **(kwargs.get("meta") or {})}
        return super().create_job(*args, **kwargs)


def queue(*, fail_fast: bool = False) -> Queue:
    """The jobs queue: on the running job's Redis inside a job, else on the configured one.

    fail_fast: no retries, for an enqueue that something else makes up for if Redis is down.
    """
    job = get_current_job()
    connection = job.connection if job is not None else redis_for_app(fail_fast=fail_fast)
    return TracedQueue(
        QUEUE, connection=connection, default_timeout=current_settings().job_timeout_seconds
    )


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job in its own context of one eBox application.

    Two of RQ's timings follow our settings, so that a dead worker's job is taken over within
    minutes: the grace after a job's time-out before its worker counts as dead (RQ's simple
    worker fixes it at 60 s), and how often registries are cleaned (RQ's default is 10 min,
    and an idle worker cleans only when its wait for a job ends, so that wait is no longer)."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        settings = app.config["EBOX"]
        kwargs.setdefault("maintenance_interval", settings.worker_maintenance_seconds)
        self.grace_seconds = settings.worker_grace_seconds
        super().__init__(*args, **kwargs)
        self.app = app

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # This worker runs the job itself and sends no heartbeat until it ends: the entries
        # must outlive the job's time-out, after which RQ's death penalty has stopped it.
        if job.timeout is None or job.timeout < 0:
            return int(super().get_heartbeat_ttl(job, working_time))
        return int(job.timeout) + self.grace_seconds

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        # The id of the request that queued the job, else one of its own (a periodic job): on
        # every line of the job, and on the jobs it queues.
        request_id = sane_request_id((job.meta or {}).get("request_id")) or new_request_id()
        with self.app.app_context(), bind_log_fields(request_id=request_id, job_id=job.id):
            return bool(super().perform_job(job, queue, execution))


@dataclass(frozen=True)
class QueueHealth:
    waiting: int
    scheduled: int
    failed: int  # jobs out of retries, kept in RQ's failed registry for operators
    workers: int


def queue_health() -> QueueHealth | None:
    """The queue as operators see it; None when Redis cannot be reached."""
    try:
        jobs = Queue(QUEUE, connection=redis_for_app(fail_fast=True))
        return QueueHealth(
            waiting=jobs.count,
            scheduled=jobs.scheduled_job_registry.count,
            failed=jobs.failed_job_registry.count,
            workers=Worker.count(queue=jobs),
        )
    except (RedisError, OSError) as exc:
        log.warning("the job queue cannot be reached: %s", type(exc).__name__)
        return None
