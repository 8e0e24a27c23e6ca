"""Fixtures of the mailbox tests."""

from __future__ import annotations

import pytest

from ebox.mailbox import queries


@pytest.fixture
def small_pages(app):
    settings = app.config["EBOX"]
    original, settings.inbox_page_size = settings.inbox_page_size, 2
    yield
    settings.inbox_page_size = original


@pytest.fixture
def small_count_limit(monkeypatch):
    """Lists counted exactly up to 3 documents, so that a test needs only a few more."""
    monkeypatch.setattr(queries, "COUNT_LIMIT", 3)
