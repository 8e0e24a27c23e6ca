"""Fixtures of the REST API tests: a signing identity per session (its certificate is registered
to a new sender in each test that needs one), a sender ready to publish, and the application
served on loopback for clients from outside (schemathesis, a generated client, webhooks)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ebox.extensions import db
from ebox.senders.models import MessageType, Sender
from tests.api.api_helpers import access_token
from tests.factories import create_message_type, create_sender
from tests.live_server import LiveServer, ebox_server
from tests.soap.wss_helpers import Identity, make_identity, register

# Fuzzing makes hundreds of calls a minute; the limit itself has tests of its own.
GENEROUS_RATE_LIMIT = 1_000_000


@pytest.fixture(scope="session")
def identity() -> Identity:
    return make_identity("rsa", name="Test Institution REST Back Office")


@pytest.fixture(scope="module")
def api_server(
    _migrated_app: Flask, instance_path: Path, database_url: str, own_redis_url: str
) -> Iterator[LiveServer]:
    """eBox on 127.0.0.1 with the test database and this process's own Redis (the rate limit
    counts per sender id, and ids start again at 1 in every test process's database)."""
    with ebox_server(
        instance_path,
        database_url,
        redis_url=own_redis_url,
        api_requests_per_minute=GENEROUS_RATE_LIMIT,
    ) as server:
        yield server


@dataclass(frozen=True)
class ApiSender:
    """A sender whose back office holds `identity`'s key, with a message type to publish."""

    sender: Sender
    message_type: MessageType
    identity: Identity

    @property
    def client_id(self) -> str:
        return self.sender.enterprise_number


@pytest.fixture
def api_sender(app: Flask, identity: Identity) -> ApiSender:
    sender = create_sender(may_send_registered=True)
    message_type = create_message_type(sender, code="TAXLETTER")
    register(identity, sender)  # commits
    return ApiSender(sender, message_type, identity)


@dataclass(frozen=True)
class Publisher:
    """A sender with a registered certificate, a message type, and an access token."""

    sender_id: int
    message_type: str
    token: str


def make_publisher(
    client: FlaskClient, identity: Identity, *, registered: bool = False
) -> Publisher:
    sender = register(identity).sender
    sender.may_send_registered = registered
    message_type = create_message_type(sender, code=f"TAX{sender.id}", validity_days=30)
    db.session.commit()
    token = access_token(client, identity, sender.enterprise_number)
    return Publisher(sender.id, message_type.code, token)


@pytest.fixture
def publisher(client: FlaskClient, identity: Identity) -> Publisher:
    return make_publisher(client, identity)
