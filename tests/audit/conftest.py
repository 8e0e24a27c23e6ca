import math
from collections.abc import Iterator

import pytest
from flask import Flask

from ebox.audit.services import anchor_clock


@pytest.fixture
def anchors_by_hand(app: Flask) -> Iterator[None]:
    """No writer seals an anchor by itself during the test: the test seals them."""
    clock = anchor_clock()
    saved = clock.next_look
    clock.next_look = math.inf
    yield
    clock.next_look = saved
