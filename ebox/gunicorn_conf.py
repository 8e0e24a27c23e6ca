"""gunicorn's settings for eBox: `gunicorn -c python:ebox.gunicorn_conf app:app`.

The master checks eBox's settings before it starts a worker: a production start refused for
unsafe settings, or a start while documents need a master key that is not configured, stops
gunicorn at once, with the reasons printed once, instead of every worker failing and being
started again in a loop.

gunicorn's own lines follow EBOX_LOG_FORMAT like eBox's: with `json`, its error log and its
access log (when turned on, `--access-logfile -`) are JSON objects, one per line.

Metrics: the workers count in files under instance/metrics (ebox/metrics.py). The master clears
what stopped processes left there before it starts the workers, and forgets a worker's live
gauges when it exits.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from ebox import metrics
from ebox.config import Settings
from ebox.errors import ConfigError
from ebox.log_config import BoundFields, MaskingJsonFormatter, mask_personal_data
from ebox.request_log import ENVIRON_REQUEST_ID, ENVIRON_SENDER_ID
from ebox.storage.rotation import check_documents_keys_configured

# The access log names the path without its query string: what a citizen searches for in the
# titles of their documents must never reach a log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def _log_format() -> str:
    try:
        return Settings.from_environment().log_format
    except ConfigError:
        return "text"  # on_starting stops gunicorn with the reason


class EboxLogger(Logger):
    """gunicorn's logger, writing JSON lines when EBOX_LOG_FORMAT is `json`."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.json_lines = _log_format() == "json"
        if self.json_lines:
            for handler in [*self.error_log.handlers, *self.access_log.handlers]:
                handler.setFormatter(MaskingJsonFormatter())
                handler.addFilter(BoundFields())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.json_lines:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = str(resp.status).split(None, 1)[0]
        method = environ.get("REQUEST_METHOD", "-")
        # PATH_INFO: the path without its query string.
        path = mask_personal_data(environ.get("PATH_INFO", ""))
        fields: dict[str, Any] = {
            "event": "http.access",
            "method": method,
            "path": path,
            "status": int(status) if status.isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "request_id": environ.get(ENVIRON_REQUEST_ID),
        }
        if environ.get(ENVIRON_SENDER_ID) is not None:
            fields["sender_id"] = environ[ENVIRON_SENDER_ID]
        self.access_log.log(logging.INFO, "%s %s %s", method, path, status, extra=fields)


logger_class = EboxLogger


def on_starting(server: Any) -> None:
    # A ConfigError is a RuntimeError: gunicorn prints "Error: <the reasons>" and exits with 1.
    settings = Settings.from_environment()
    settings.check()
    check_documents_keys_configured(settings)
    directory = metrics.directory_for(settings)
    metrics.use_directory(directory)  # inherited by every worker the master starts
    metrics.clean_directory(directory)


def child_exit(server: Any, worker: Any) -> None:
    metrics.process_exited(worker.pid)
