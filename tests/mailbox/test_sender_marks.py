import zlib

import pytest

from ebox.mailbox.sender_marks import COLOURS, sender_mark


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        ("Federal Pension Service", "FPS"),
        ("Service public fédéral de la Sécurité sociale", "SPF"),
        ("Vlaamse Belastingdienst", "VB"),
        ("Deutschsprachige Gemeinschaft für Familie und Soziales", "DGF"),
        ("SPF Finances", "SPF"),
        ("Onem", "On"),
        ("Stad Gent", "SG"),
        ("4711", "?"),
    ],
)
def test_a_sender_mark_is_the_initials_of_the_words_that_carry_the_name(name, initials):
    assert sender_mark(name).initials == initials


def test_senders_whose_names_start_alike_get_different_marks():
    pension, family = sender_mark("Demo Pension Service"), sender_mark("Demo Family Allowance Fund")
    assert pension.initials != family.initials
    assert pension.colour != family.colour


def test_a_senders_colour_is_the_same_in_every_process():
    # A checksum of the name, not Python's hash(), which changes with every process.
    name = "Federal Pension Service"
    assert sender_mark(name).colour == zlib.crc32(name.encode()) % COLOURS
    assert all(0 <= sender_mark(f"Sender {n}").colour < COLOURS for n in range(50))
