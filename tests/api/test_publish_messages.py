"""POST /api/v1/messages: publication over REST, its refusals (each storing nothing), the
Idempotency-Key and the reference shared with SOAP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ebox.api.models import IdempotencyKey
from ebox.audit.models import AuditEvent
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Attachment, Document
from ebox.storage.services import list_storage_keys
from tests.api.api_helpers import bearer, message_part, publication_form, publish
from tests.api.conftest import Publisher
from tests.factories import create_citizen, make_png, next_national_number

PROBLEM = "application/problem+json"
PDF = make_pdf("Tax assessment", ["Dear citizen,", "Your assessment for 2026."])
MAIN = ("assessment.pdf", "application/pdf", PDF)
PNG = ("chart.png", "image/png", make_png())


def _counts() -> tuple[int, int, int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Document)) or 0,
        db.session.scalar(select(func.count()).select_from(Attachment)) or 0,
        db.session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0,
        len(list(list_storage_keys())),
    )


def test_a_message_with_one_document_is_published(
    client: FlaskClient, publisher: Publisher
) -> None:
    citizen = create_citizen()
    db.session.commit()
    message = message_part(citizen.national_number, publisher.message_type, [MAIN])

    answer = publish(client, publisher.token, message, [MAIN])

    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = answer.get_json()
    assert answer.headers["Location"] == f"/api/v1/messages/{body['id']}"
    assert body["status"] == "published" and body["citizenActivated"] is True
    assert body["reference"] == message["reference"]
    assert body["documents"] == [
        {
            "fileName": "assessment.pdf",
            "mediaType": "application/pdf",
            "sizeBytes": len(PDF),
            "sha256": message["documents"][0]["sha256"],
        }
    ]
    assert body["evidence"] == []
    document = db.session.get(Document, uuid.UUID(body["id"]))
    assert document is not None and document.recipient_national_number == citizen.national_number
    status = client.get(
        body["Location"] if "Location" in body else answer.headers["Location"],
        headers=bearer(publisher.token),
    )
    assert status.get_json() | {"citizenActivated": True} == body


def test_a_message_with_two_documents_keeps_them_in_order(
    client: FlaskClient, publisher: Publisher
) -> None:
    documents = [MAIN, PNG]
    message = message_part(next_national_number(), publisher.message_type, documents)

    answer = publish(client, publisher.token, message, documents)

    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = answer.get_json()
    assert [item["fileName"] for item in body["documents"]] == ["assessment.pdf", "chart.png"]
    assert body["citizenActivated"] is False
    document = db.session.get(Document, uuid.UUID(body["id"]))
    assert document is not None
    assert [(a.position, a.media_type) for a in document.attachments] == [(1, "image/png")]


def _refused(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.mimetype == PROBLEM, answer.get_data(as_text=True)
    problem: dict[str, Any] = answer.get_json()
    assert (answer.status_code, problem["code"]) == (status, code), problem
    assert problem["detail"]
    return problem


@pytest.mark.parametrize(
    ("changes", "documents", "status", "code"),
    [
        ({"recipient": "12345678901"}, [MAIN], 400, "INVALID_NATIONAL_NUMBER"),
        ({"messageType": "NO-SUCH-TYPE"}, [MAIN], 400, "MESSAGE_TYPE_UNKNOWN"),
        ({"language": "es"}, [MAIN], 400, "INVALID_FIELD"),
        ({"title": " "}, [MAIN], 400, "INVALID_FIELD"),
        ({"reference": {"ticket": "T" * 26}}, [MAIN], 400, "INVALID_FIELD"),
        ({"expiresOn": "2020-01-01"}, [MAIN], 400, "EXPIRATION_OUT_OF_BOUNDS"),
        ({}, [("a.pdf", "application/pdf", b"%PDF-1.7 not really")], 400, "NOT_A_PDF"),
        ({}, [MAIN, ("x.exe", "application/x-msdownload", b"MZ")], 400, "ATTACHMENT_TYPE_REFUSED"),
        ({}, [MAIN] + [PNG] * 11, 400, "TOO_MANY_ATTACHMENTS"),
        ({"documents": []}, [], 400, "INVALID_REQUEST"),
        ({"registered": True}, [MAIN], 403, "REGISTERED_MAIL_NOT_ALLOWED"),
        ({"bodyText": "x" * 20001}, [MAIN], 400, "INVALID_FIELD"),
        ({"expiresOn": "31/12/2026"}, [MAIN], 400, "INVALID_REQUEST"),
        ({"registered": "yes"}, [MAIN], 400, "INVALID_REQUEST"),
        ({"title": 5}, [MAIN], 400, "INVALID_REQUEST"),
        ({"colour": "red"}, [MAIN], 400, "INVALID_REQUEST"),
        ({"reference": {"ticket": "A", "sequence": "1"}}, [MAIN], 400, "INVALID_REQUEST"),
        ({"reference": {"ticket": "T\x00"}}, [MAIN], 400, "INVALID_REQUEST"),  # PostgreSQL: no NUL
        ({"title": "half a pair \ud800"}, [MAIN], 400, "INVALID_REQUEST"),
    ],
)
def test_a_refused_publication_stores_nothing_and_is_audited(
    client: FlaskClient,
    publisher: Publisher,
    changes: dict[str, Any],
    documents: list[tuple[str, str, bytes]],
    status: int,
    code: str,
) -> None:
    message = message_part(next_national_number(), publisher.message_type, documents, **changes)
    before = _counts()

    _refused(publish(client, publisher.token, message, documents), status, code)

    assert _counts() == before
    refusal = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "publication.refused")
    ).one()
    assert refusal.details["code"] == code


def test_a_wrong_digest_of_an_attachment_is_refused(
    client: FlaskClient, publisher: Publisher
) -> None:
    before = _counts()
    ten_and_one = [MAIN] + [PNG] * 10
    wrong = message_part(next_national_number(), publisher.message_type, ten_and_one)
    wrong["documents"][3]["sha256"] = "0" * 64
    _refused(publish(client, publisher.token, wrong, ten_and_one), 400, "DIGEST_MISMATCH")
    assert _counts() == before


def test_a_message_over_the_total_is_refused(
    app: object, client: FlaskClient, publisher: Publisher
) -> None:
    settings = client.application.config["EBOX"]
    previous = settings.max_message_bytes
    settings.max_message_bytes = len(PDF) + 10
    try:
        documents = [MAIN, PNG, PNG]
        message = message_part(next_national_number(), publisher.message_type, documents)
        before = _counts()
        _refused(publish(client, publisher.token, message, documents), 413, "MESSAGE_TOO_LARGE")
        assert _counts() == before
    finally:
        settings.max_message_bytes = previous


def test_a_body_over_the_limit_is_a_413_problem(client: FlaskClient, publisher: Publisher) -> None:
    settings = client.application.config["EBOX"]
    previous = settings.max_message_bytes
    settings.max_message_bytes = 1000  # the limit is this and 1 MiB of multipart around it
    try:
        big = ("big.pdf", "application/pdf", PDF + b"%" * (2 * 1024 * 1024))
        message = message_part(next_national_number(), publisher.message_type, [big])
        _refused(publish(client, publisher.token, message, [big]), 413, "REQUEST_TOO_LARGE")
    finally:
        settings.max_message_bytes = previous


@pytest.mark.parametrize(
    ("key", "detail"),
    [(None, "Idempotency-Key"), ("", "Idempotency-Key"), ("k" * 256, "Idempotency-Key")],
)
def test_the_idempotency_key_is_required(
    client: FlaskClient, publisher: Publisher, key: str | None, detail: str
) -> None:
    headers = bearer(publisher.token)
    if key is not None:
        headers["Idempotency-Key"] = key
    message = message_part(next_national_number(), publisher.message_type, [MAIN])
    answer = client.post(
        "/api/v1/messages",
        data=publication_form(message, [MAIN]),
        headers=headers,
        content_type="multipart/form-data",
    )
    assert detail in _refused(answer, 400, "INVALID_REQUEST")["detail"]


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"documents": [(PDF, "a.pdf")]}, "message"),
        ({"message": (b"{not json", "m.json")}, "JSON"),
        ({"message": (b"[]", "m.json")}, "object"),
        ({"extra": (b"x", "x.txt")}, "extra"),
    ],
)
def test_malformed_bodies_are_refused_naming_what_is_wrong(
    client: FlaskClient, publisher: Publisher, form: dict[str, Any], named: str
) -> None:
    import io

    data: dict[str, Any] = {}
    for name, value in form.items():
        values = value if isinstance(value, list) else [value]
        data[name] = [(io.BytesIO(content), file_name) for content, file_name in values]
    headers = bearer(publisher.token) | {"Idempotency-Key": "k1"}
    answer = client.post(
        "/api/v1/messages", data=data, headers=headers, content_type="multipart/form-data"
    )
    assert named in _refused(answer, 400, "INVALID_REQUEST")["detail"]


def test_a_count_of_parts_unlike_the_list_and_a_wrong_content_type_are_refused(
    client: FlaskClient, publisher: Publisher
) -> None:
    message = message_part(next_national_number(), publisher.message_type, [MAIN, PNG])
    problem = _refused(publish(client, publisher.token, message, [MAIN]), 400, "INVALID_REQUEST")
    assert "message.documents lists 2" in problem["detail"]

    headers = bearer(publisher.token) | {"Idempotency-Key": "k2"}
    as_json = client.post("/api/v1/messages", json=message, headers=headers)
    _refused(as_json, 415, "UNSUPPORTED_MEDIA_TYPE")

    cut = client.post(
        "/api/v1/messages",
        data=b'--xyz\r\nContent-Disposition: form-data; name="message"\r\n\r\n{}',
        headers=headers,
        content_type="multipart/form-data; boundary=xyz",
    )
    _refused(cut, 400, "INVALID_REQUEST")


def test_the_same_key_and_content_answer_the_original_and_other_content_is_refused(
    client: FlaskClient, publisher: Publisher
) -> None:
    message = message_part(next_national_number(), publisher.message_type, [MAIN])
    first = publish(client, publisher.token, message, [MAIN], key="order-42")
    assert first.status_code == 201

    again = publish(client, publisher.token, message, [MAIN], key="order-42")
    assert again.status_code == 200 and "Location" not in again.headers
    assert again.get_json()["id"] == first.get_json()["id"]

    other = dict(message, title="Another title")
    _refused(
        publish(client, publisher.token, other, [MAIN], key="order-42"),
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert _counts()[0] == 1


def test_the_same_reference_with_a_new_key_answers_the_original_or_a_conflict(
    client: FlaskClient, publisher: Publisher
) -> None:
    message = message_part(next_national_number(), publisher.message_type, [MAIN])
    first = publish(client, publisher.token, message, [MAIN])

    retry = publish(client, publisher.token, message, [MAIN])
    assert retry.status_code == 200
    assert retry.get_json()["id"] == first.get_json()["id"]

    other = dict(message, title="Another title")
    _refused(publish(client, publisher.token, other, [MAIN]), 409, "DUPLICATE_MESSAGE_ID")


def test_a_publication_is_audited_like_soaps(client: FlaskClient, publisher: Publisher) -> None:
    message = message_part(next_national_number(), publisher.message_type, [MAIN, PNG])
    body = publish(client, publisher.token, message, [MAIN, PNG]).get_json()

    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "document.published")
    ).one()
    assert event.subject_id == body["id"]
    assert event.details["ticket"] == message["reference"]["ticket"]
    assert event.details["repeated"] is False
    assert (event.details["channel"], event.details["attachments"]) == ("rest", 1)
    assert json.dumps(event.details).count(message["recipient"]) == 0  # masked
