"""The mark beside each document: the initials of the sender's name on a colour of its own, so
that senders whose names start alike still look different in a list ("Federal Pension
Service" FPS, "Flemish Tax Agency" FTA). Worked out once a name: a page shows the same few."""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

# Words that carry no name in the platform's languages: "Service public fédéral de la
# Sécurité sociale" gives SPF (three initials at most), not SPFD.
_SMALL_WORDS = frozenset(
    " ".join(
        (
            "a an and of the for on in at to",
            "de du des la le les l d et en pour au aux",
            "van der den het voor op",
            "die das für und von zu im am",
        )
    ).split()
)
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
# How many colours the marks take turns on (ebox.css: .sender-mark--0 to --5).
COLOURS = 6


@dataclass(frozen=True)
class SenderMark:
    initials: str
    colour: int


@functools.lru_cache(maxsize=4096)
def sender_mark(name: str) -> SenderMark:
    words = _WORDS.findall(name)
    kept = [word for word in words if word.lower() not in _SMALL_WORDS] or words
    if kept and 2 <= len(kept[0]) <= 4 and kept[0].isupper():
        initials = kept[0]  # the sender's own acronym: "SPF Finances", "RVA"
    elif len(kept) == 1:
        initials = kept[0][:2].capitalize()
    else:
        initials = "".join(word[0] for word in kept[:3]).upper()
    # A checksum of the name, not hash(): the same colour in every process and every day.
    return SenderMark(initials or "?", zlib.crc32(name.encode()) % COLOURS)
