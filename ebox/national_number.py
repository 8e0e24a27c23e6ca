"""Belgian national register numbers (INSZ/NISS): 11 digits, the last two a mod-97 check.

The check is 97 - (first nine digits mod 97). For people born from 2000 on, the nine digits
are prefixed with a 2 before the modulo is taken. A number is valid when either rule holds.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s.\-]")


class InvalidNationalNumber(ValueError):
    """The text is not a national register number; the message says why."""


def normalise(raw: str) -> str:
    """Return the 11 digits of a national number, or raise InvalidNationalNumber.

    Accepts the usual printed forms ("85.07.30-033.28", "85073003328").
    """
    digits = _SEPARATORS.sub("", raw or "")
    if not digits:
        raise InvalidNationalNumber("A national register number is required.")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidNationalNumber("A national register number contains digits only.")
    if len(digits) != 11:
        raise InvalidNationalNumber("A national register number has exactly 11 digits.")
    if check_digits(digits[:9], born_from_2000=False) != int(digits[9:]) and check_digits(
        digits[:9], born_from_2000=True
    ) != int(digits[9:]):
        raise InvalidNationalNumber("The check digits of this national register number are wrong.")
    return digits


def is_valid(raw: str) -> bool:
    try:
        normalise(raw)
    except InvalidNationalNumber:
        return False
    return True


def check_digits(first_nine: str, *, born_from_2000: bool) -> int:
    base = int(("2" if born_from_2000 else "") + first_nine)
    return 97 - (base % 97)


def make(first_nine: str, *, born_from_2000: bool = False) -> str:
    """Complete nine digits with their check digits (demo data and tests)."""
    return f"{first_nine}{check_digits(first_nine, born_from_2000=born_from_2000):02d}"


def mask(national_number: str) -> str:
    """The form used in logs: birth date hidden, last digits kept for support ("*******3328")."""
    return "*" * 7 + national_number[-4:] if len(national_number) == 11 else "***********"


def printed(digits: str) -> str:
    """The printed form of a national number: 85.07.30-033.28 (anything else unchanged)."""
    if len(digits) != 11 or not digits.isdigit():
        return digits
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:11]}"
