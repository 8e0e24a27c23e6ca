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

from ebox.redis_connection import redis_for_app

log = logging.getLogger(__name__)

QUEUE = "default"


def queue(*, fail_fast: bool = False) -> Queue:
    """The jobs queue: on the running job's Redis inside a job, else on the configured one.

    fail_fast: no retries, for an enqueue that something else makes up for if Redis is down.
    """
    job = get_current_job()
    connection = job.connection if job is not None else redis_for_app(fail_fast=fail_fast)
    return Queue(QUEUE, connection=connection)


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job in its own context of one eBox application."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        with self.app.app_context():
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
