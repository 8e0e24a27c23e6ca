"""Reading over REST: a message's status, the search, citizens' reachability, a registered
message's evidence and proof; never another sender's message; the Idempotency-Keys' clean-up."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from ebox.api.jobs import forget_old_idempotency_keys
from ebox.api.models import IdempotencyKey
from ebox.db_types import utcnow
from ebox.evidence.jobs import make_proof
from ebox.evidence.models import Evidence
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.services import confirm_receipt
from ebox.senders.models import MessageType
from tests.api.api_helpers import bearer, message_part, publish
from tests.api.conftest import Publisher, make_publisher
from tests.api.test_publish_messages import MAIN, PNG
from tests.factories import create_citizen, create_document, next_national_number
from tests.soap.wss_helpers import make_identity

PROBLEM = "application/problem+json"


def _published(client: FlaskClient, publisher: Publisher, **changes: object) -> dict[str, object]:
    message = message_part(next_national_number(), publisher.message_type, [MAIN, PNG], **changes)
    answer = publish(client, publisher.token, message, [MAIN, PNG])
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return dict(answer.get_json())


def _message_type(publisher: Publisher) -> MessageType:
    return db.session.scalars(
        select(MessageType).where(MessageType.code == publisher.message_type)
    ).one()


def test_a_message_is_read_with_its_documents_and_after_deletion_without(
    client: FlaskClient, publisher: Publisher
) -> None:
    body = _published(client, publisher)
    answer = client.get(f"/api/v1/messages/{body['id']}", headers=bearer(publisher.token))
    assert answer.status_code == 200
    assert [item["mediaType"] for item in answer.get_json()["documents"]] == [
        "application/pdf",
        "image/png",
    ]

    db.session.execute(update(Document).values(deleted_at=utcnow(), file_name=None))
    db.session.commit()
    deleted = client.get(f"/api/v1/messages/{body['id']}", headers=bearer(publisher.token))
    assert deleted.get_json()["status"] == "deleted"
    assert deleted.get_json()["documents"] == []


def test_another_senders_message_is_not_found_on_every_endpoint(
    client: FlaskClient, publisher: Publisher
) -> None:
    body = _published(client, publisher)
    stranger = make_publisher(client, make_identity("ec"), registered=True)
    for path in ("", "/evidence", "/proof", f"/evidence/{body['id']}"):
        answer = client.get(f"/api/v1/messages/{body['id']}{path}", headers=bearer(stranger.token))
        assert (answer.status_code, answer.get_json()["code"]) == (404, "MESSAGE_NOT_FOUND"), path
    search = client.post(
        "/api/v1/messages:search",
        json={"ids": [body["id"]], "references": [body["reference"]]},
        headers=bearer(stranger.token),
    )
    assert [item["found"] for item in search.get_json()["messages"]] == [False, False]
    missing = client.get("/api/v1/messages/not-an-id", headers=bearer(publisher.token))
    assert missing.status_code == 404


def test_the_search_answers_in_the_order_asked(client: FlaskClient, publisher: Publisher) -> None:
    first = _published(client, publisher)
    second = _published(client, publisher)
    asked = {
        "ids": [second["id"], "00000000-0000-0000-0000-000000000000", "junk"],
        "references": [first["reference"], {"ticket": "NOPE"}],
    }
    answer = client.post("/api/v1/messages:search", json=asked, headers=bearer(publisher.token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found = answer.get_json()["messages"]
    assert [item["found"] for item in found] == [True, False, False, True, False]
    assert found[0]["query"] == {"id": second["id"]} and found[0]["message"]["id"] == second["id"]
    assert found[3]["query"] == {"reference": first["reference"]}
    assert found[3]["message"]["id"] == first["id"]
    assert found[4] == {
        "query": {"reference": {"ticket": "NOPE", "sequence": None}},
        "found": False,
        "message": None,
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ids": ["x"] * 200, "references": [{"ticket": "T"}] * 51}, "TOO_MANY_IDS"),
        ({"ids": "x"}, "INVALID_REQUEST"),
        ({"references": [{"ticket": ""}]}, "INVALID_REQUEST"),
        ({"references": [{"ticket": "T\x00"}]}, "INVALID_REQUEST"),  # PostgreSQL: no NUL
        ({"ids": ["\udc00"]}, "INVALID_REQUEST"),  # half a surrogate pair
        ({"other": []}, "INVALID_REQUEST"),
    ],
)
def test_a_search_out_of_bounds_is_refused(
    client: FlaskClient, publisher: Publisher, body: dict[str, object], code: str
) -> None:
    answer = client.post("/api/v1/messages:search", json=body, headers=bearer(publisher.token))
    assert answer.mimetype == PROBLEM
    assert (answer.status_code, answer.get_json()["code"]) == (400, code)


def test_a_body_nested_too_deep_for_the_parser_is_refused(
    client: FlaskClient, publisher: Publisher
) -> None:
    answer = client.post(
        "/api/v1/messages:search",
        data=b"[" * 100_000,
        content_type="application/json",
        headers=bearer(publisher.token),
    )
    assert (answer.status_code, answer.get_json()["code"]) == (400, "INVALID_REQUEST")


def test_exactly_250_queries_are_answered(client: FlaskClient, publisher: Publisher) -> None:
    answer = client.post(
        "/api/v1/messages:search",
        json={"references": [{"ticket": f"T{n}"} for n in range(250)]},
        headers=bearer(publisher.token),
    )
    assert answer.status_code == 200 and len(answer.get_json()["messages"]) == 250


def test_citizens_status_tells_each_in_the_order_asked(
    client: FlaskClient, publisher: Publisher
) -> None:
    active = create_citizen(is_electronic_only=True)
    inactive = create_citizen(activated=False)
    db.session.commit()
    unknown = next_national_number()
    numbers = [unknown, active.national_number, inactive.national_number]
    answer = client.post(
        "/api/v1/citizens:status",
        json={"nationalNumbers": numbers},
        headers=bearer(publisher.token),
    )
    assert answer.status_code == 200
    assert answer.get_json()["citizens"] == [
        {"nationalNumber": unknown, "exists": False, "activated": False, "electronicOnly": False},
        {
            "nationalNumber": active.national_number,
            "exists": True,
            "activated": True,
            "electronicOnly": True,
        },
        {
            "nationalNumber": inactive.national_number,
            "exists": True,
            "activated": False,
            "electronicOnly": False,
        },
    ]


def test_citizens_status_refuses_too_many_and_names_an_invalid_number(
    client: FlaskClient, publisher: Publisher
) -> None:
    valid = next_national_number()
    too_many = client.post(
        "/api/v1/citizens:status",
        json={"nationalNumbers": [valid] * 1001},
        headers=bearer(publisher.token),
    )
    assert (too_many.status_code, too_many.get_json()["code"]) == (400, "TOO_MANY_IDS")
    assert (
        client.post(
            "/api/v1/citizens:status",
            json={"nationalNumbers": [valid] * 1000},
            headers=bearer(publisher.token),
        ).status_code
        == 200
    )
    invalid = client.post(
        "/api/v1/citizens:status",
        json={"nationalNumbers": [valid, "12345678901"]},
        headers=bearer(publisher.token),
    )
    problem = invalid.get_json()
    assert (invalid.status_code, problem["code"]) == (400, "INVALID_NATIONAL_NUMBER")
    assert "nationalNumbers[1]" in problem["detail"]


def test_a_registered_message_has_its_evidence_and_its_proof_once_made(
    client: FlaskClient, identity: object
) -> None:
    publisher = make_publisher(client, identity, registered=True)  # type: ignore[arg-type]
    citizen = create_citizen()
    db.session.commit()
    message = message_part(citizen.national_number, publisher.message_type, [MAIN], registered=True)
    body = publish(client, publisher.token, message, [MAIN]).get_json()
    assert [item["type"] for item in body["evidence"]] == [
        "SubmissionAcceptance",
        "ContentConsignment",
    ]
    base = f"/api/v1/messages/{body['id']}"
    chain = client.get(f"{base}/evidence", headers=bearer(publisher.token)).get_json()
    assert [item["id"] for item in chain["evidence"]] == [item["id"] for item in body["evidence"]]
    sealed = client.get(
        f"{base}/evidence/{chain['evidence'][0]['id']}", headers=bearer(publisher.token)
    )
    assert sealed.mimetype == "application/xml"
    assert hashlib.sha256(sealed.data).hexdigest() == chain["evidence"][0]["sha256"]

    not_ready = client.get(f"{base}/proof", headers=bearer(publisher.token))
    assert (not_ready.status_code, not_ready.get_json()["code"]) == (409, "PROOF_NOT_READY")
    make_proof(body["id"])
    proof = client.get(f"{base}/proof", headers=bearer(publisher.token))
    assert proof.status_code == 200 and proof.mimetype == "application/pdf"
    assert proof.data.startswith(b"%PDF-") and proof.headers["Ebox-Proof-Version"] == "1"

    document = db.session.get(Document, uuid.UUID(body["id"]))
    assert document is not None
    confirm_receipt(document=document)
    db.session.commit()
    assert client.get(f"{base}/proof", headers=bearer(publisher.token)).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Evidence)) == 3


def test_evidence_is_for_approved_senders_and_registered_messages_only(
    client: FlaskClient, publisher: Publisher
) -> None:
    body = _published(client, publisher)
    refused = client.get(f"/api/v1/messages/{body['id']}/evidence", headers=bearer(publisher.token))
    assert (refused.status_code, refused.get_json()["code"]) == (403, "REGISTERED_MAIL_NOT_ALLOWED")

    approved = make_publisher(client, make_identity("rsa"), registered=True)
    plain = create_document(create_citizen(), message_type=_message_type(approved))
    answer = client.get(f"/api/v1/messages/{plain.id}/proof", headers=bearer(approved.token))
    assert (answer.status_code, answer.get_json()["code"]) == (404, "MESSAGE_NOT_FOUND")
    assert "not registered" in answer.get_json()["detail"]


def test_idempotency_keys_older_than_a_day_are_forgotten(
    client: FlaskClient, publisher: Publisher
) -> None:
    _published(client, publisher)
    _published(client, publisher)
    db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.key == select(func.min(IdempotencyKey.key)).scalar_subquery())
        .values(created_at=utcnow() - timedelta(hours=25))
    )
    db.session.commit()

    assert forget_old_idempotency_keys() == 1
    assert forget_old_idempotency_keys() == 0  # safe to run twice
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
