"""Signing client assertions and getting access tokens, as a sender's back office does."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from werkzeug.test import TestResponse

from tests.soap.wss_helpers import Identity

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def client_assertion(
    identity: Identity,
    client_id: str,
    *,
    audience: str = "http://localhost/api/v1/token",
    lifetime: int = 60,
    header: dict[str, Any] | None = None,
    signing_identity: Identity | None = None,
    **claims: Any,
) -> str:
    """A client assertion for client_id, its certificate in x5c, signed by the identity's key
    (or signing_identity's: a wrong signature); claims given replace or remove (None) the usual."""
    signer = signing_identity or identity
    key: RSAKey | ECKey
    if isinstance(signer.certificate.public_key(), ec.EllipticCurvePublicKey):
        key, algorithm = ECKey.import_key(signer.key_pem), "ES256"
    else:
        key, algorithm = RSAKey.import_key(signer.key_pem), "RS256"
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    protected = {
        "alg": algorithm,
        "typ": "JWT",
        "x5c": [base64.b64encode(identity.cert_der).decode()],
    }
    protected.update(header or {})
    return jwt.encode(protected, payload, key, algorithms=[protected["alg"]])


def token_form(assertion: str, **changes: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    form.update(changes)
    return form


def access_token(client: FlaskClient, identity: Identity, client_id: str) -> str:
    answer = client.post("/api/v1/token", data=token_form(client_assertion(identity, client_id)))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return str(answer.get_json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def live_access_token(base_url: str, identity: Identity, client_id: str) -> str:
    """An access token from a served eBox's token endpoint, as a back office gets one."""
    assertion = client_assertion(identity, client_id, audience=f"{base_url}/api/v1/token")
    answer = requests.post(f"{base_url}/api/v1/token", data=token_form(assertion), timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def message_part(
    recipient: str,
    message_type: str,
    documents: list[tuple[str, str, bytes]],
    /,
    **changes: Any,
) -> dict[str, Any]:
    """A publication's message part for these documents (name, media type, content)."""
    message: dict[str, Any] = {
        "recipient": recipient,
        "messageType": message_type,
        "language": "en",
        "title": "Your tax assessment",
        "reference": {"ticket": f"REST-{secrets.token_hex(4)}", "sequence": 1},
        "documents": [
            {"fileName": name, "mediaType": media_type, "sha256": hashlib.sha256(data).hexdigest()}
            for name, media_type, data in documents
        ],
    }
    message.update(changes)
    return {name: value for name, value in message.items() if value is not None}


def publication_form(
    message: dict[str, Any] | bytes, documents: list[tuple[str, str, bytes]]
) -> dict[str, Any]:
    """The multipart form of the test client: the message part and one documents part each."""
    encoded = message if isinstance(message, bytes) else json.dumps(message).encode()
    return {
        "message": (io.BytesIO(encoded), "message.json", "application/json"),
        "documents": [(io.BytesIO(data), name, media_type) for name, media_type, data in documents],
    }


def publish(
    client: FlaskClient,
    token: str,
    message: dict[str, Any] | bytes,
    documents: list[tuple[str, str, bytes]],
    *,
    key: str | None = None,
) -> TestResponse:
    headers = bearer(token)
    headers["Idempotency-Key"] = key or secrets.token_hex(16)
    return client.post(
        "/api/v1/messages",
        data=publication_form(message, documents),
        headers=headers,
        content_type="multipart/form-data",
    )


def publish_live(
    base_url: str,
    token: str,
    message: dict[str, Any],
    documents: list[tuple[str, str, bytes]],
    *,
    key: str | None = None,
) -> requests.Response:
    """POST /api/v1/messages to a served eBox, as a back office does (requests' multipart)."""
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        ("message", ("message.json", json.dumps(message).encode(), "application/json"))
    ]
    files += [("documents", (name, data, media_type)) for name, media_type, data in documents]
    headers = {**bearer(token), "Idempotency-Key": key or secrets.token_hex(16)}
    return requests.post(f"{base_url}/api/v1/messages", files=files, headers=headers, timeout=60)
