from __future__ import annotations

from collections.abc import Iterator

import pytest

from ebox.config import Settings
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def receiver(webhook_settings: Settings) -> Iterator[Receiver]:
    with running_receiver() as running:
        running.hang_seconds = webhook_settings.webhook_timeout_seconds + 0.5
        yield running
