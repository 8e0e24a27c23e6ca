"""Fixtures for the EboxMessage service: a live server on loopback with its own app on the
test database, one signing identity per session, and a zeep client loaded from the served WSDL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import zeep
from flask import Flask

from examples.ebox_client import make_client
from tests.live_server import LiveServer, ebox_server
from tests.mail.smtp_server import smtp_server  # noqa: F401
from tests.soap.wss_helpers import REDIS_URL, Identity, make_identity


@pytest.fixture(scope="module")
def soap_server(
    _migrated_app: Flask, instance_path: Path, database_url: str
) -> Iterator[LiveServer]:
    """The whole application served on 127.0.0.1, its public URL the server's own address.

    Same database and document store as the `app` fixture, so tests arrange with factories and
    check what the server stored. Redis is the machine's (registered mail queues its proofs).
    """
    with ebox_server(instance_path, database_url, redis_url=REDIS_URL) as server:
        yield server


@pytest.fixture(scope="session")
def identity() -> Identity:
    return make_identity("rsa", name="Test Institution Back Office")


@pytest.fixture(scope="session")
def other_identity() -> Identity:
    return make_identity("ec", name="Other Institution Back Office")


@pytest.fixture(scope="module")
def wsdl_url(soap_server: LiveServer) -> str:
    return f"{soap_server.url}/soap/EboxMessage/v1?wsdl"


@pytest.fixture(scope="module")
def zeep_client(wsdl_url: str, identity: Identity) -> zeep.Client:
    return make_client(wsdl_url, identity.key_pem, identity.cert_pem)


@pytest.fixture(scope="module")
def other_client(wsdl_url: str, other_identity: Identity) -> zeep.Client:
    return make_client(wsdl_url, other_identity.key_pem, other_identity.cert_pem)
