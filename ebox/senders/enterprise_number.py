"""Belgian enterprise numbers (KBO/BCE): 10 digits, the last two a mod-97 check.

The first digit is 0 or 1; the check is 97 - (first eight digits mod 97). Printed forms such as
"BE 0123.456.749" are accepted and reduced to their ten digits.
"""

from __future__ import annotations

import re

from ebox.senders.texts import _

_SEPARATORS = re.compile(r"[\s.\-]")


class InvalidEnterpriseNumber(ValueError):
    """The text is not an enterprise number; the message says why."""


def normalise(raw: str) -> str:
    """The ten digits of an enterprise number, or raise InvalidEnterpriseNumber."""
    text = _SEPARATORS.sub("", raw or "")
    if text[:2].upper() == "BE":
        text = text[2:]
    if not text:
        raise InvalidEnterpriseNumber(_("An enterprise number is required."))
    if not text.isascii() or not text.isdigit():
        raise InvalidEnterpriseNumber(_("An enterprise number contains digits only."))
    if len(text) != 10:
        raise InvalidEnterpriseNumber(_("An enterprise number has 10 digits."))
    if text[0] not in "01":
        raise InvalidEnterpriseNumber(_("An enterprise number starts with 0 or 1."))
    if check_digits(text[:8]) != int(text[8:]):
        raise InvalidEnterpriseNumber(_("The check digits of this enterprise number are wrong."))
    return text


def is_valid(raw: str) -> bool:
    try:
        normalise(raw)
    except InvalidEnterpriseNumber:
        return False
    return True


def check_digits(first_eight: str) -> int:
    return 97 - (int(first_eight) % 97)


def make(first_eight: str) -> str:
    """Complete eight digits with their check digits (demo data and tests)."""
    return f"{first_eight}{check_digits(first_eight):02d}"


def display(number: str) -> str:
    """The usual printed form, "0123.456.749"."""
    if len(number) != 10:
        return number
    return f"{number[:4]}.{number[4:7]}.{number[7:]}"
