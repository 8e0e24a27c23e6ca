"""Background jobs: the queue they go to and the worker that runs them in the application.

Jobs are plain functions named by their dotted path. The worker runs each one inside a fresh
application context (so each has its own database session) without forking: jobs here are many
and short, and a fork per job would cost more than most of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.job import Job, get_current_job

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
    return TracedQueue(QUEUE, connection=connection)


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job in its own context of one eBox application."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

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
