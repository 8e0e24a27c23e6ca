"""Fixtures of the REST API tests: a signing identity per session (its certificate is registered
to a new sender in each test that needs one), and a sender ready to publish."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from ebox.extensions import db
from tests.api.api_helpers import access_token
from tests.factories import create_message_type
from tests.soap.wss_helpers import Identity, make_identity, register


@pytest.fixture(scope="session")
def identity() -> Identity:
    return make_identity("rsa", name="Test Institution REST Back Office")


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
