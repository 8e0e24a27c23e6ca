from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from ebox.config import Settings
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def webhook_settings(app: Flask, empty_redis_url: str) -> Iterator[Settings]:
    """Loopback receivers allowed, short time-outs and waits, and a Redis of this test."""
    settings: Settings = app.config["EBOX"]
    changes = {
        "webhook_allow_loopback": True,
        "webhook_timeout_seconds": 1,
        "webhook_retry_base_seconds": 1,
        "redis_url": empty_redis_url,
    }
    previous = {name: getattr(settings, name) for name in changes}
    for name, value in changes.items():
        setattr(settings, name, value)
    yield settings
    for name, value in previous.items():
        setattr(settings, name, value)


@pytest.fixture
def receiver(webhook_settings: Settings) -> Iterator[Receiver]:
    with running_receiver() as running:
        running.hang_seconds = webhook_settings.webhook_timeout_seconds + 0.5
        yield running
