"""Logging: one line per event, and no national register number or e-mail address ever written
in full. The code logs ids, not personal data (tests/test_log_privacy.py checks the records);
the formatter masks what slips through anyway.

Two formats (EBOX_LOG_FORMAT): `text`, one line to read, and `json`, one JSON object per line
for a log collector. Every line of a request, and of a job, carries the fields bound to it
(request_id, sender_id, job_id: see bind_log_fields); text lines do not show them.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# Eleven digits standing alone, with or without the printed separators (85.07.30-033.28).
_NATIONAL_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])(\d{2})\.?(\d{2})\.?(\d{2})-?(\d{3})\.?(\d{2})(?![0-9A-Za-z])"
)


# An address's local part (what names the person) and its domain.
_EMAIL_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def mask_national_numbers(text: str) -> str:
    return _NATIONAL_NUMBER.sub(lambda m: "*******" + m.group(4)[-2:] + m.group(5), text)


def mask_personal_data(text: str) -> str:
    """National numbers keep their last four digits, e-mail addresses only their domain."""
    return _EMAIL_ADDRESS.sub(r"***@\1", mask_national_numbers(text))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The fields bound to what runs now (a request, a job), added to each of its log records.
_bound: ContextVar[dict[str, Any] | None] = ContextVar("ebox_log_fields", default=None)


def _fields() -> dict[str, Any]:
    return _bound.get() or {}


@contextmanager
def bind_log_fields(**fields: Any) -> Iterator[None]:
    """Add fields to every log record written until the block ends (in this thread or task)."""
    token = push_log_fields(**fields)
    try:
        yield
    finally:
        pop_log_fields(token)


def push_log_fields(**fields: Any) -> Token[dict[str, Any] | None]:
    """bind_log_fields in two steps, for hooks that start and end apart (a request's)."""
    return _bound.set({**_fields(), **fields})


def pop_log_fields(token: Token[dict[str, Any] | None]) -> None:
    _bound.reset(token)


# An X-Request-ID taken from a client goes into every line of its request: only a short token
# of plain characters is taken (a UUID, nginx's $request_id), anything else is replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def sane_request_id(candidate: str | None) -> str | None:
    """candidate when it is fit for a log line, else None. One the masking would change (a
    national number) is refused too: the lines would not show the id the client was given."""
    if (
        candidate
        and _SANE_REQUEST_ID.fullmatch(candidate)
        and mask_personal_data(candidate) == candidate
    ):
        return candidate
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def add_log_fields(**fields: Any) -> None:
    """Add fields to what is bound now, until the enclosing bind_log_fields block ends (a
    SOAP request's sender, once its signature is checked)."""
    _bound.set({**_fields(), **fields})


def log_field(name: str) -> Any:
    """The value of a bound field, None when none is bound."""
    return _fields().get(name)


class BoundFields(logging.Filter):
    """Puts the bound fields on each record that passes through a handler, unless the record
    names them itself (logged with extra=)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class MaskingFormatter(logging.Formatter):
    """Formats as usual, then masks: covers the message, its arguments and tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_personal_data(super().format(record))


class MaskingJsonFormatter(JsonFormatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then the bound
    fields and those given with extra= (event, duration_ms, ...), and exc_info for a traceback.

    Each text value is masked before it is encoded: masking the encoded line would miss a
    number after an escaped character (a newline is `\\n` there) and could break the line."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _utc_time(record.created)
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: _masked(value) for key, value in log_data.items()}


def _utc_time(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal_data(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_personal_data(str(value))


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of EBOX_LOG_FORMAT: `json` or `text`."""
    return MaskingJsonFormatter() if log_format == "json" else MaskingFormatter(TEXT_FORMAT)


class _ServiceHandler(logging.StreamHandler):
    """eBox's own handler, told apart from handlers others (a test runner) put on the root.

    A command runner may swap sys.stderr while an application is created and close its stream
    afterwards: the handler then goes back to the process's own standard error rather than fail
    on every line."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self.stream, "closed", False):
            self.stream = sys.__stderr__
        super().emit(record)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    handler = _ServiceHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(BoundFields())
    root = logging.getLogger()
    kept = [other for other in root.handlers if not isinstance(other, _ServiceHandler)]
    root.handlers[:] = [*kept, handler]
    root.setLevel(level)
    # xmlschema (under pysaml2, the demo identity provider) tells at INFO that it loaded its own
    # meta-schema, at every start: noise for whoever reads the service's output.
    logging.getLogger("xmlschema").setLevel(logging.WARNING)
    # pysaml2 (the demo identity provider) names a cipher mode that cryptography has moved; it is
    # not used, and the warning would only alarm whoever reads the service's output.
    warnings.filterwarnings("ignore", message="CFB has been moved")
