"""gunicorn's settings for eBox: `gunicorn -c python:ebox.gunicorn_conf app:app`.

The master checks eBox's settings before it starts a worker: a production start refused for
unsafe settings stops gunicorn at once, with the reasons printed once, instead of every worker
failing and being started again in a loop.
"""

from __future__ import annotations

from typing import Any

from ebox.config import Settings

# The access log names the path without its query string: what a citizen searches for in the
# titles of their documents must never reach a log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def on_starting(server: Any) -> None:
    # A ConfigError is a RuntimeError: gunicorn prints "Error: <the reasons>" and exits with 1.
    Settings.from_environment().check()
