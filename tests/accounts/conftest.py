from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _accounts_logs_enabled() -> Iterator[None]:
    """Alembic's fileConfig() in the migrations disables loggers that existed before it ran."""
    logger = logging.getLogger("ebox.accounts.views")
    was_disabled = logger.disabled
    logger.disabled = False
    yield
    logger.disabled = was_disabled
