"""The token endpoint: client credentials with private_key_jwt, and every way it refuses."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from ebox.api import tokens
from ebox.config import Settings, current_settings
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.senders.models import Sender
from tests.api.api_helpers import access_token, bearer, client_assertion, token_form
from tests.soap.wss_helpers import Identity, make_identity, register

PROBLEM = "application/problem+json"


@pytest.fixture
def sender(app: object, identity: Identity) -> Sender:
    return register(identity).sender


def test_a_signed_assertion_gets_a_short_lived_bearer_token(
    client: FlaskClient, identity: Identity, sender: Sender
) -> None:
    answer = client.post(
        "/api/v1/token", data=token_form(client_assertion(identity, sender.enterprise_number))
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert answer.headers["Cache-Control"] == "no-store"
    status = client.get(
        "/api/v1/messages/00000000-0000-0000-0000-000000000000",
        headers=bearer(body["access_token"]),
    )
    assert status.status_code == 404  # authenticated: the message is simply not there
    assert status.get_json()["code"] == "MESSAGE_NOT_FOUND"


def test_an_ec_certificate_signs_assertions_too(client: FlaskClient, app: object) -> None:
    ec_identity = make_identity("ec")
    ec_sender = register(ec_identity).sender
    assert access_token(client, ec_identity, ec_sender.enterprise_number)


def _refusal(client: FlaskClient, form: dict[str, str]) -> tuple[int, dict[str, object]]:
    answer = client.post("/api/v1/token", data=form)
    assert answer.mimetype == PROBLEM, answer.get_data(as_text=True)
    return answer.status_code, answer.get_json()


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"audience": "https://elsewhere.example/token"}, 401, "AUDIENCE_INVALID"),
        ({"exp": int(time.time()) - 120}, 401, "TIMESTAMP_INVALID"),
        ({"lifetime": 3600}, 401, "TIMESTAMP_INVALID"),
        ({"iat": int(time.time()) + 600}, 401, "TIMESTAMP_INVALID"),
        ({"jti": None}, 401, "ASSERTION_INVALID"),
        ({"exp": None}, 401, "ASSERTION_INVALID"),
        ({"iss": "0000000000"}, 401, "CLIENT_MISMATCH"),
    ],
)
def test_a_wrong_claim_is_refused_with_its_code(
    client: FlaskClient,
    identity: Identity,
    sender: Sender,
    change: dict[str, object],
    status: int,
    code: str,
) -> None:
    form = token_form(client_assertion(identity, sender.enterprise_number, **change))
    got_status, problem = _refusal(client, form)
    assert (got_status, problem["code"]) == (status, code)
    assert problem["error"] == "invalid_client"
    assert problem["detail"]


def test_a_replayed_assertion_is_refused(
    client: FlaskClient, identity: Identity, sender: Sender
) -> None:
    form = token_form(client_assertion(identity, sender.enterprise_number))
    assert client.post("/api/v1/token", data=form).status_code == 200
    assert _refusal(client, form) == (401, _refusal(client, form)[1])
    assert _refusal(client, form)[1]["code"] == "REPLAY"


def test_an_unsigned_assertion_is_refused(
    client: FlaskClient, identity: Identity, sender: Sender
) -> None:
    signed = client_assertion(identity, sender.enterprise_number)
    header, payload, _signature = signed.split(".")
    import base64
    import json

    none_header = json.loads(base64.urlsafe_b64decode(header + "=="))
    none_header["alg"] = "none"
    encoded = base64.urlsafe_b64encode(json.dumps(none_header).encode()).rstrip(b"=").decode()
    status, problem = _refusal(client, token_form(f"{encoded}.{payload}."))
    assert (status, problem["code"]) == (401, "SIGNATURE_ALGORITHM_REFUSED")


def test_an_assertion_signed_with_another_key_is_refused(
    client: FlaskClient, identity: Identity, sender: Sender
) -> None:
    stranger = make_identity("rsa")
    assertion = client_assertion(identity, sender.enterprise_number, signing_identity=stranger)
    status, problem = _refusal(client, token_form(assertion))
    assert (status, problem["code"]) == (401, "SIGNATURE_INVALID")


def test_another_senders_key_cannot_ask_for_a_senders_token(
    client: FlaskClient, identity: Identity, sender: Sender
) -> None:
    other = make_identity("rsa")
    register(other)
    status, problem = _refusal(
        client, token_form(client_assertion(other, sender.enterprise_number))
    )
    assert (status, problem["code"]) == (401, "CLIENT_MISMATCH")


def test_an_unregistered_revoked_or_suspended_key_is_refused(
    client: FlaskClient, app: object
) -> None:
    unknown = make_identity("rsa")
    status, problem = _refusal(client, token_form(client_assertion(unknown, "0123456789")))
    assert (status, problem["code"]) == (401, "CERTIFICATE_UNKNOWN")

    revoked = make_identity("rsa")
    revoked_sender = register(revoked, revoked=True).sender
    status, problem = _refusal(
        client, token_form(client_assertion(revoked, revoked_sender.enterprise_number))
    )
    assert (status, problem["code"]) == (401, "CERTIFICATE_REVOKED")

    suspended = make_identity("rsa")
    suspended_sender = register(suspended).sender
    suspended_sender.is_active = False
    db.session.commit()
    status, problem = _refusal(
        client, token_form(client_assertion(suspended, suspended_sender.enterprise_number))
    )
    assert (status, problem["code"]) == (403, "SENDER_SUSPENDED")


def test_a_token_stops_working_once_its_certificate_is_revoked(
    client: FlaskClient, identity: Identity, sender: Sender
) -> None:
    token = access_token(client, identity, sender.enterprise_number)
    certificate = sender.certificates[0]
    certificate.revoked_at = utcnow()
    db.session.commit()
    answer = client.get("/api/v1/messages/x", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "CERTIFICATE_REVOKED"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "TOKEN_MISSING"),
        ({"Authorization": "Bearer not-a-token"}, "TOKEN_INVALID"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "TOKEN_MISSING"),
    ],
)
def test_calls_without_a_valid_token_are_refused(
    client: FlaskClient, app: object, headers: dict[str, str], code: str
) -> None:
    answer = client.get("/api/v1/messages/x", headers=headers)
    assert answer.status_code == 401
    assert answer.mimetype == PROBLEM
    assert answer.get_json()["code"] == code
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_grant_and_unknown_endpoints_are_problems_too(
    client: FlaskClient, app: object
) -> None:
    status, problem = _refusal(client, token_form("x", grant_type="password"))
    assert (status, problem["code"], problem["error"]) == (
        400,
        "GRANT_TYPE_UNSUPPORTED",
        "unsupported_grant_type",
    )
    missing = client.get("/api/v1/nothing-here")
    assert (missing.status_code, missing.mimetype, missing.get_json()["code"]) == (
        404,
        PROBLEM,
        "NOT_FOUND",
    )
    wrong_method = client.delete("/api/v1/token")
    assert (wrong_method.status_code, wrong_method.get_json()["code"]) == (
        405,
        "METHOD_NOT_ALLOWED",
    )
    as_json = client.post("/api/v1/token", json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.get_json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


# --- the tokens a process remembers -------------------------------------------------------


def _issued(settings: Settings, now: datetime) -> str:
    value, _lifetime = tokens.issue(settings, sender_id=7, certificate_sha256="ab" * 32, now=now)
    return value


def test_a_verified_token_is_remembered_and_not_decoded_again(
    app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, now = current_settings(), utcnow()
    value = _issued(settings, now)
    first = tokens.read(settings, value, now=now)

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a remembered token was decoded again")

    monkeypatch.setattr(tokens.jwt, "decode", no_decoding)
    assert tokens.read(settings, value, now=now + timedelta(seconds=30)) == first
    # Another key (another application) is not answered from this memory: it decodes.
    other = dataclasses.replace(settings, secret_key="another secret key of 32 characters")
    with pytest.raises(AssertionError, match="decoded again"):
        tokens.read(other, value, now=now)


def test_a_remembered_token_still_expires(app: object) -> None:
    settings, now = current_settings(), utcnow()
    value = _issued(settings, now)
    tokens.read(settings, value, now=now)
    later = now + timedelta(minutes=settings.api_token_minutes, seconds=1)
    with pytest.raises(tokens.TokenRefused, match="expired"):
        tokens.read(settings, value, now=later)


def test_a_refused_token_is_not_remembered_and_the_memory_is_bounded(
    app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, now = current_settings(), utcnow()
    monkeypatch.setattr(tokens, "_MEMORY", tokens._Memory())
    monkeypatch.setattr(tokens, "REMEMBERED_TOKENS", 3)
    forged = _issued(dataclasses.replace(settings, secret_key="x" * 40), now)
    for _ in range(2):
        with pytest.raises(tokens.TokenRefused, match="signature"):
            tokens.read(settings, forged, now=now)
    assert len(tokens._MEMORY) == 0
    issued = [_issued(settings, now) for _ in range(5)]
    for value in issued:
        tokens.read(settings, value, now=now)
    assert len(tokens._MEMORY) == 3
