"""A push service on loopback, as a browser's would be, and browsers' subscriptions to it.

A subscription is made as a browser makes one: its own P-256 key pair and a 16-byte auth
secret, the public half sent to eBox. The service takes what eBox POSTs to the endpoint,
checks the VAPID authorisation (RFC 8292: an ES256 JWT whose audience is this service, signed
by the key in k=), decrypts the aes128gcm body (RFC 8291) with the subscription's private key
and auth secret, as the browser would once the service hands it on, and keeps it. It answers
201, or the status a test set for a subscription (410: gone).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What a browser keeps (the private key) and what it gives the server (toJSON())."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def token(self) -> str:
        return self.endpoint.rsplit("/", 1)[1]

    def to_json(self) -> dict[str, Any]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }


@dataclass
class Push:
    token: str
    payload: bytes  # decrypted
    vapid_key: str  # k=, base64url
    claims: dict[str, Any]
    headers: dict[str, str]

    @property
    def message(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed


@dataclass
class PushService:
    origin: str
    subscriptions: dict[str, BrowserSubscription] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)  # token -> status to answer
    pushes: list[Push] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused
    lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self) -> BrowserSubscription:
        token = b64url(os.urandom(12))
        subscription = BrowserSubscription(
            endpoint=f"{self.origin}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=os.urandom(16),
        )
        self.subscriptions[token] = subscription
        return subscription

    def pushes_to(self, subscription: BrowserSubscription) -> list[Push]:
        with self.lock:
            return [push for push in self.pushes if push.token == subscription.token]

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        token = path.rsplit("/", 1)[-1]
        subscription = self.subscriptions.get(token)
        if not path.startswith("/push/") or subscription is None:
            return 404
        try:
            vapid_key, claims = self._authorised(headers.get("authorization", ""))
            if headers.get("content-encoding") != "aes128gcm":
                raise ValueError("not aes128gcm")
            payload = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth,
                version="aes128gcm",
            )
        except (ValueError, KeyError, InvalidSignature) as problem:
            with self.lock:
                self.refused.append(f"{type(problem).__name__}: {problem}")
            return 400 if not isinstance(problem, InvalidSignature) else 403
        status = self.answers.get(token, 201)
        with self.lock:
            self.pushes.append(Push(token, payload, vapid_key, claims, headers))
        return status

    def _authorised(self, authorization: str) -> tuple[str, dict[str, Any]]:
        """The VAPID key and the JWT's claims, once its signature and claims are checked."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"authorization scheme {scheme!r}")
        parts = dict(part.strip().split("=", 1) for part in rest.split(","))
        token, key = parts["t"], parts["k"]
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(unb64url(header_b64))
        if header.get("alg") != "ES256":
            raise ValueError(f"JWT algorithm {header.get('alg')!r}")
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        signature = unb64url(signature_b64)
        if len(signature) != 64:
            raise ValueError("an ES256 signature has 64 bytes")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(unb64url(claims_b64))
        if claims.get("aud") != self.origin:
            raise ValueError(f"audience {claims.get('aud')!r}")
        if not time.time() < int(claims["exp"]) <= time.time() + 24 * 3600:
            raise ValueError("expiry not within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise ValueError("no subject")
        return key, claims


def start_push_service() -> tuple[PushService, ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    service = PushService(origin=f"http://127.0.0.1:{server.server_port}")
    server.service = service  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="push-service", daemon=True).start()
    return service, server


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        service: PushService = self.server.service  # type: ignore[attr-defined]
        status = service.receive(self.path, headers, body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service, server = start_push_service()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
