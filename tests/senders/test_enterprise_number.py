"""Belgian enterprise numbers: 10 digits with a mod-97 check, printed forms accepted."""

from __future__ import annotations

import pytest

from ebox.senders.enterprise_number import (
    InvalidEnterpriseNumber,
    display,
    is_valid,
    make,
    normalise,
)


@pytest.mark.parametrize(
    "printed", ["0123456749", "0123.456.749", "BE 0123.456.749", "be0123456749", " 0123 456 749 "]
)
def test_printed_forms_are_reduced_to_ten_digits(printed: str) -> None:
    assert normalise(printed) == "0123456749"


def test_numbers_starting_with_1_are_valid() -> None:
    assert normalise(make("10000000")) == "1000000021"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "required"),
        ("0123.456.74A", "digits only"),
        ("012345674", "10 digits"),
        ("01234567490", "10 digits"),
        ("2123456749", "starts with 0 or 1"),
        ("0123456748", "check digits"),
    ],
)
def test_wrong_numbers_are_refused_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidEnterpriseNumber, match=reason):
        normalise(raw)
    assert not is_valid(raw)


def test_check_digits_are_97_minus_the_first_eight_digits_mod_97() -> None:
    assert make("01234567") == "0123456749"
    assert (97 - 1234567 % 97) == 49


def test_display_groups_the_digits() -> None:
    assert display("0123456749") == "0123.456.749"
