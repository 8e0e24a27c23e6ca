"""GET /api/v1/events and /api/v1/webhooks: a sender sees and manages only its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from standardwebhooks import Webhook

from ebox.audit.models import AuditEvent
from ebox.config import Settings
from ebox.extensions import db
from ebox.mailbox.services import mark_read
from ebox.senders.models import Sender
from ebox.webhooks.models import WebhookSubscription
from tests.api.api_helpers import access_token, bearer
from tests.events.events_helpers import settled
from tests.factories import create_citizen, create_document, create_message_type
from tests.soap.wss_helpers import Identity, make_identity, register

PROBLEM = "application/problem+json"


@pytest.fixture
def sender(app: object, identity: Identity) -> Sender:
    return register(identity).sender


@pytest.fixture
def headers(client: FlaskClient, identity: Identity, sender: Sender) -> dict[str, str]:
    return bearer(access_token(client, identity, sender.enterprise_number))


@pytest.fixture
def loopback_allowed(webhook_settings: Settings) -> None:
    """Receivers on this machine may be named (EBOX_WEBHOOK_ALLOW_LOOPBACK)."""


def test_events_are_pulled_page_by_page_and_next_is_there_when_none_is(
    client: FlaskClient, sender: Sender, headers: dict[str, str]
) -> None:
    message_type = create_message_type(sender)
    citizen = create_citizen()
    documents = [create_document(citizen, message_type=message_type) for _ in range(3)]
    mark_read(document=documents[1])
    db.session.commit()
    create_document(citizen)  # another sender's
    settled()

    seen: list[dict[str, object]] = []
    after = None
    for _ in range(3):
        query = {"limit": "2"} | ({"after": after} if after else {})
        answer = client.get("/api/v1/events", query_string=query, headers=headers)
        assert answer.status_code == 200
        seen += answer.get_json()["events"]
        after = answer.get_json()["next"]
    assert [event["type"] for event in seen] == ["message.published"] * 3 + ["message.read"]
    assert [event["messageId"] for event in seen[:3]] == [str(d.id) for d in documents]
    assert seen[3]["messageId"] == str(documents[1].id)
    empty = client.get("/api/v1/events", query_string={"after": after}, headers=headers)
    assert empty.get_json() == {"events": [], "next": after}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"after": "not-a-cursor"}, "INVALID_CURSOR"),
        ({"limit": "0"}, "INVALID_REQUEST"),
        ({"limit": "501"}, "INVALID_REQUEST"),
        ({"limit": "ten"}, "INVALID_REQUEST"),
    ],
)
def test_a_wrong_cursor_or_limit_is_a_problem(
    client: FlaskClient, headers: dict[str, str], query: dict[str, str], code: str
) -> None:
    answer = client.get("/api/v1/events", query_string=query, headers=headers)
    assert (answer.status_code, answer.mimetype, answer.get_json()["code"]) == (400, PROBLEM, code)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("GET", "/api/v1/webhooks/00000000-0000-0000-0000-000000000000"),
        ("DELETE", "/api/v1/webhooks/00000000-0000-0000-0000-000000000000"),
    ],
)
def test_every_endpoint_needs_a_token(
    client: FlaskClient, app: object, method: str, path: str
) -> None:
    answer = client.open(path, method=method, json={"url": "http://127.0.0.1/"})
    assert (answer.status_code, answer.get_json()["code"]) == (401, "TOKEN_MISSING")


def test_a_webhook_is_made_shown_and_deleted_and_its_secret_shown_once(
    client: FlaskClient, sender: Sender, headers: dict[str, str], loopback_allowed: None
) -> None:
    created = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "eventTypes": ["message.read"]},
        headers=headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["secret"].startswith("whsec_")
    assert Webhook(body["secret"]).sign("evt_1", datetime.now(UTC), "{}")
    assert created.headers["Location"].endswith(f"/api/v1/webhooks/{body['id']}")
    assert (body["eventTypes"], body["active"], body["disabledReason"]) == (
        ["message.read"],
        True,
        None,
    )
    shown = client.get(f"/api/v1/webhooks/{body['id']}", headers=headers).get_json()
    assert "secret" not in shown and shown["url"] == "http://127.0.0.1:9/hook"
    listed = client.get("/api/v1/webhooks", headers=headers).get_json()["webhooks"]
    assert [each["id"] for each in listed] == [body["id"]]
    assert all("secret" not in each for each in listed)

    assert client.delete(f"/api/v1/webhooks/{body['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/webhooks/{body['id']}", headers=headers).status_code == 404
    db.session.rollback()
    actions = db.session.execute(
        select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.actor_id).where(
            AuditEvent.action.like("webhook.%")
        )
    ).all()
    assert actions == [
        ("webhook.created", "sender", str(sender.id)),
        ("webhook.deleted", "sender", str(sender.id)),
    ]


def test_another_senders_webhook_is_answered_like_a_missing_one(
    client: FlaskClient, headers: dict[str, str], loopback_allowed: None
) -> None:
    stranger = make_identity("ec", name="Another Institution")
    stranger_sender = register(stranger).sender
    theirs = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/theirs"},
        headers=bearer(access_token(client, stranger, stranger_sender.enterprise_number)),
    ).get_json()["id"]
    for method in ("GET", "DELETE"):
        foreign = client.open(f"/api/v1/webhooks/{theirs}", method=method, headers=headers)
        missing = client.open(
            "/api/v1/webhooks/11111111-1111-1111-1111-111111111111", method=method, headers=headers
        )
        assert foreign.status_code == missing.status_code == 404
        assert foreign.get_json()["code"] == missing.get_json()["code"] == "WEBHOOK_NOT_FOUND"
    assert client.get("/api/v1/webhooks", headers=headers).get_json() == {"webhooks": []}
    db.session.rollback()
    assert db.session.get(WebhookSubscription, uuid.UUID(theirs)) is not None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"url": "http://127.0.0.1:9/hook", "eventTypes": ["message.opened"]},
            "UNKNOWN_EVENT_TYPE",
        ),
        ({"url": "http://127.0.0.1:9/hook", "eventTypes": []}, "UNKNOWN_EVENT_TYPE"),
        ({"url": "http://10.0.0.8/hook"}, "WEBHOOK_URL_REFUSED"),
        ({"url": "http://127.0.0.1:9/hook", "secret": "mine"}, "INVALID_REQUEST"),
        ({"url": 12}, "INVALID_REQUEST"),
        ([], "INVALID_REQUEST"),
    ],
)
def test_a_wrong_subscription_is_refused_with_its_code(
    client: FlaskClient, headers: dict[str, str], loopback_allowed: None, body: object, code: str
) -> None:
    answer = client.post("/api/v1/webhooks", json=body, headers=headers)
    assert (answer.status_code, answer.mimetype, answer.get_json()["code"]) == (400, PROBLEM, code)
