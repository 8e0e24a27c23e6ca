"""The RQ worker (with its scheduler), running every job inside the eBox application.

python worker.py            # work until stopped; periodic jobs come from ebox/schedule.py
python worker.py --burst    # work until the queue is empty, then stop (tests, one-off runs)
EBOX_REDIS_URL=redis://...  # production; unset, an embedded Redis under instance/ is used
"""

from __future__ import annotations

import contextlib
import logging
import sys

from rq import Queue

from ebox import create_app, metrics
from ebox.config import Settings
from ebox.errors import ConfigError
from ebox.jobs import QUEUE, AppWorker
from ebox.redis_connection import connect as connect_redis
from ebox.redis_connection import embedded_redis
from ebox.schedule import ensure_scheduled
from ebox.storage.rotation import check_documents_keys_configured

log = logging.getLogger("ebox.worker")


def main(argv: list[str]) -> int:
    burst = "--burst" in argv
    try:
        settings = Settings.from_environment()
        # Before the application counts anything (its first database connection): beside
        # gunicorn's processes on this machine, so any web process's /metrics includes ours.
        metrics.use_directory(metrics.directory_for(settings))
        app = create_app(settings)
        check_documents_keys_configured(app.config["EBOX"])
    except ConfigError as error:
        # A refusal to start is an operator's message, not a traceback.
        print(f"eBox cannot start: {error}", file=sys.stderr)
        return 1
    settings = app.config["EBOX"]
    with contextlib.ExitStack() as stack:
        if settings.redis_url:
            connection = connect_redis(settings)
        else:
            connection = stack.enter_context(embedded_redis(settings))
        jobs = Queue(QUEUE, connection=connection, default_timeout=settings.job_timeout_seconds)
        # Made before anything talks to Redis: RQ raises the read timeout of the connections
        # this client makes above its blocking wait for a job (minutes), which
        # EBOX_REDIS_TIMEOUT_SECONDS would cut short; connecting stays bounded by the setting.
        worker = AppWorker([jobs], connection=connection, app=app)
        if not burst:
            with app.app_context():
                scheduled = ensure_scheduled(jobs)
            log.info("periodic jobs scheduled: %s", ", ".join(scheduled))
        worker.work(with_scheduler=True, burst=burst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
