"""Publication over REST on a live server: eight requests at once with one Idempotency-Key make
one message (PostgreSQL), and a reference published over SOAP is the same MessageID over REST."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from ebox import create_app
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import Sender
from ebox.storage.services import list_storage_keys
from examples.ebox_client import make_client, publish_pdf
from tests.api.api_helpers import client_assertion, message_part, token_form
from tests.conftest import make_settings
from tests.factories import create_message_type, next_national_number
from tests.live_server import LiveServer, live_server
from tests.soap.wss_helpers import REDIS_URL, Identity, register

PDF = make_pdf("Twins over REST", ["Sent eight times at once"])
MAIN = ("notice.pdf", "application/pdf", PDF)


@pytest.fixture(scope="module")
def api_server(
    _migrated_app: Flask, instance_path: Path, database_url: str
) -> Iterator[LiveServer]:
    settings = make_settings(instance_path, database_url, redis_url=REDIS_URL)
    served = create_app(settings, TESTING=True)
    with live_server(served) as server:
        settings.public_url = server.url
        yield server


@pytest.fixture
def sender(app: Flask, identity: Identity) -> Sender:
    sender = register(identity).sender
    create_message_type(sender, code="NOTICE", validity_days=30)
    db.session.commit()
    return sender


def _token(server: LiveServer, identity: Identity, sender: Sender) -> str:
    assertion = client_assertion(
        identity, sender.enterprise_number, audience=f"{server.url}/api/v1/token"
    )
    answer = requests.post(f"{server.url}/api/v1/token", data=token_form(assertion), timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _post(server: LiveServer, token: str, message: dict[str, Any], key: str) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/messages",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        files=[
            ("message", (None, json.dumps(message), "application/json")),
            ("documents", ("notice.pdf", PDF, "application/pdf")),
        ],
        timeout=30,
    )


@pytest.mark.postgres_only
@pytest.mark.slow
def test_eight_requests_at_once_with_one_key_make_one_message(
    api_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    token = _token(api_server, identity, sender)
    message = message_part(next_national_number(), "NOTICE", [MAIN])
    before = set(list_storage_keys())
    start = threading.Barrier(8)
    answers: list[requests.Response] = []

    def send() -> None:
        start.wait(10)
        answers.append(_post(api_server, token, message, "one-key-for-eight"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [201], [
        answer.text for answer in answers
    ]
    assert len({answer.json()["id"] for answer in answers}) == 1
    db.session.rollback()  # see what the server committed
    count = db.session.scalar(
        select(func.count()).select_from(Document).where(Document.sender_id == sender.id)
    )
    assert count == 1
    assert len(set(list_storage_keys()) - before) == 1


@pytest.mark.slow
def test_a_reference_published_over_soap_is_the_same_message_id_over_rest(
    api_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    recipient = next_national_number()
    soap = make_client(
        f"{api_server.url}/soap/EboxMessage/v1?wsdl", identity.key_pem, identity.cert_pem
    )
    published = publish_pdf(
        soap,
        recipient=recipient,
        message_type="NOTICE",
        title="Your tax assessment",
        pdf=PDF,
        file_name="notice.pdf",
        ticket="SHARED-1",
        sequence=7,
        language="en",
    )
    token = _token(api_server, identity, sender)
    same = message_part(
        recipient, "NOTICE", [MAIN], reference={"ticket": "SHARED-1", "sequence": 7}
    )

    again = _post(api_server, token, same, "k-same")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == str(published.EboxMessageId)

    other = _post(api_server, token, dict(same, title="Another title"), "k-other")
    assert other.status_code == 409
    assert other.headers["Content-Type"] == "application/problem+json"
    assert other.json()["code"] == "DUPLICATE_MESSAGE_ID"
    assert hashlib.sha256(PDF).hexdigest() == again.json()["documents"][0]["sha256"]
