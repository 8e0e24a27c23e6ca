"""The access tokens of the REST API: short-lived, signed by eBox, naming a registered certificate.

A token is a JWT (RFC 9068's shape, HMAC-SHA256) signed with a key derived from eBox's secret
key, so that every web process of every node checks it without asking anyone. It names the
sender and the certificate whose key signed the client assertion it was issued for; each call
looks that certificate up again (ebox.senders.directory, remembered for seconds), so a revoked
certificate or a suspended sender stops being accepted within seconds, not at the token's end.

A back office sends the same token with every call for minutes: each process remembers the
tokens it verified (a bounded number, each until it expires), so that a repeated call costs a
dictionary look-up instead of the JWT's HMAC and JSON. A refused token is never remembered.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from ebox.config import Settings

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, RFC 9068)
# Tokens remembered per process: a few per sender in use, the oldest forgotten first.
REMEMBERED_TOKENS = 1024


class TokenRefused(ValueError):
    """The token is not one eBox issued, or no longer valid."""


@dataclass(frozen=True)
class AccessToken:
    sender_id: int
    certificate_sha256: str
    expires_at: datetime


def issue(
    settings: Settings, *, sender_id: int, certificate_sha256: str, now: datetime
) -> tuple[str, int]:
    """A new access token and its lifetime in seconds."""
    lifetime = int(timedelta(minutes=settings.api_token_minutes).total_seconds())
    issued_at = int(now.timestamp())
    claims = {
        "iss": _issuer(settings),
        "aud": _issuer(settings),
        "sub": str(sender_id),
        "client_id": str(sender_id),
        "x5t#S256": certificate_sha256,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE}
    return jwt.encode(header, claims, _key(settings), algorithms=[ALGORITHM]), lifetime


def read(settings: Settings, value: str, *, now: datetime) -> AccessToken:
    """The token's sender and certificate, if eBox issued it and it has not expired."""
    # The issuer and the key are part of what was verified: another application in the same
    # process (tests, a second instance) must verify for itself.
    memory_key = (_issuer(settings), _key_digest(settings.secret_key), value)
    token = _MEMORY.recall(memory_key)
    if token is None:
        token = _verified(settings, value, now=now)
    if token.expires_at.timestamp() <= now.timestamp():
        _MEMORY.forget(memory_key)
        raise TokenRefused("The access token has expired; ask /api/v1/token for a new one.")
    _MEMORY.remember(memory_key, token)
    return token


def _verified(settings: Settings, value: str, *, now: datetime) -> AccessToken:
    try:
        token = jwt.decode(value, _key(settings), algorithms=[ALGORITHM])
        claims = token.claims
        if token.header.get("typ") != TOKEN_TYPE or claims.get("iss") != _issuer(settings):
            raise TokenRefused("The access token was not issued by this eBox.")
        expires_at = int(claims["exp"])
        sender_id = int(claims["sub"])
        certificate_sha256 = str(claims["x5t#S256"])
    except (JoseError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, TokenRefused):
            raise
        raise TokenRefused("The access token is malformed or its signature is wrong.") from None
    return AccessToken(
        sender_id, certificate_sha256, datetime.fromtimestamp(expires_at, now.tzinfo)
    )


class _Memory:
    """Verified tokens by (issuer, key, token), at most REMEMBERED_TOKENS, oldest out first."""

    def __init__(self) -> None:
        self._tokens: OrderedDict[tuple[str, str, str], AccessToken] = OrderedDict()
        self._lock = threading.Lock()

    def recall(self, key: tuple[str, str, str]) -> AccessToken | None:
        return self._tokens.get(key)

    def remember(self, key: tuple[str, str, str], token: AccessToken) -> None:
        with self._lock:
            if key in self._tokens:
                return
            self._tokens[key] = token
            while len(self._tokens) > REMEMBERED_TOKENS:
                self._tokens.popitem(last=False)

    def forget(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def __len__(self) -> int:
        return len(self._tokens)


_MEMORY = _Memory()


def _issuer(settings: Settings) -> str:
    return f"{settings.public_url}/api/v1"


def _key(settings: Settings) -> OctKey:
    # Derived, so that the secret key itself never signs anything a client sees.
    derived = hmac.new(settings.secret_key.encode(), b"ebox api access tokens", hashlib.sha256)
    return OctKey.import_key(derived.digest())


@functools.lru_cache(maxsize=8)
def _key_digest(secret_key: str) -> str:
    """What names the signing key in the memory's keys, without keeping the secret there."""
    return hashlib.sha256(b"ebox api token memory " + secret_key.encode()).hexdigest()
