import pytest

from ebox import national_number
from ebox.national_number import InvalidNationalNumber, normalise


def test_a_number_born_before_2000_is_accepted_in_printed_form():
    assert normalise("85.07.30-033.28") == "85073003328"


def test_a_number_born_from_2000_uses_the_prefixed_check():
    number = national_number.make("030901125", born_from_2000=True)
    assert number == "03090112597"
    assert normalise(number) == number
    # The pre-2000 rule alone would not accept it.
    assert national_number.check_digits("030901125", born_from_2000=False) != 97


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "required"),
        ("8507300332", "exactly 11 digits"),
        ("850730033289", "exactly 11 digits"),
        ("85073003329", "check digits"),
        ("8507300332A", "digits only"),
        ("８５０７３００３３２８", "digits only"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidNationalNumber, match=reason):
        normalise(raw)


def test_mask_keeps_only_the_last_four_digits():
    assert national_number.mask("85073003328") == "*******3328"
