"""Logging: one line per event, and no national register number ever written in full."""

from __future__ import annotations

import logging
import re
import sys
import warnings

# Eleven digits standing alone, with or without the printed separators (85.07.30-033.28).
_NATIONAL_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])(\d{2})\.?(\d{2})\.?(\d{2})-?(\d{3})\.?(\d{2})(?![0-9A-Za-z])"
)


def mask_national_numbers(text: str) -> str:
    return _NATIONAL_NUMBER.sub(lambda m: "*******" + m.group(4)[-2:] + m.group(5), text)


class MaskingFormatter(logging.Formatter):
    """Formats as usual, then masks: covers the message, its arguments and tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_national_numbers(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pysaml2 (the demo identity provider) names a cipher mode that cryptography has moved; it is
    # not used, and the warning would only alarm whoever reads the service's output.
    warnings.filterwarnings("ignore", message="CFB has been moved")
