"""Fixtures of the REST API tests: a signing identity per session (its certificate is registered
to a new sender in each test that needs one)."""

from __future__ import annotations

import pytest

from tests.soap.wss_helpers import Identity, make_identity


@pytest.fixture(scope="session")
def identity() -> Identity:
    return make_identity("rsa", name="Test Institution REST Back Office")
