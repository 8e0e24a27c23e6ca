"""The RQ worker (with its scheduler), running jobs inside an eBox application context.

python worker.py            # queues: default
EBOX_REDIS_URL=redis://...  # production; unset, an embedded Redis under instance/ is used
"""

from __future__ import annotations

import contextlib
import sys

from rq import Queue, Worker

from ebox import create_app
from ebox.redis_connection import connect as connect_redis
from ebox.redis_connection import embedded_redis

QUEUES = ("default",)


def main(argv: list[str]) -> int:
    app = create_app()
    settings = app.config["EBOX"]
    with app.app_context(), contextlib.ExitStack() as stack:
        if settings.redis_url:
            connection = connect_redis(settings)
        else:
            connection = stack.enter_context(embedded_redis(settings))
        queues = [Queue(name, connection=connection) for name in QUEUES]
        worker = Worker(queues, connection=connection)
        worker.work(with_scheduler=True, burst="--burst" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
