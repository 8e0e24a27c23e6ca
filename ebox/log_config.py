"""Logging: one line per event, and no national register number or e-mail address ever written
in full. The code logs ids, not personal data (tests/test_log_privacy.py checks the records);
the formatter masks what slips through anyway."""

from __future__ import annotations

import logging
import re
import sys
import warnings

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


class MaskingFormatter(logging.Formatter):
    """Formats as usual, then masks: covers the message, its arguments and tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_personal_data(super().format(record))


class _ServiceHandler(logging.StreamHandler):
    """eBox's own handler, told apart from handlers others (a test runner) put on the root."""


def configure_logging(level: str = "INFO") -> None:
    handler = _ServiceHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
