"""The access tokens of the REST API: short-lived, signed by eBox, naming a registered certificate.

A token is a JWT (RFC 9068's shape, HMAC-SHA256) signed with a key derived from eBox's secret
key, so that every web process of every node checks it without asking anyone. It names the
sender and the certificate whose key signed the client assertion it was issued for; each call
looks that certificate up again (ebox.senders.directory, remembered for seconds), so a revoked
certificate or a suspended sender stops being accepted within seconds, not at the token's end.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from ebox.config import Settings

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, RFC 9068)


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
    if expires_at <= now.timestamp():
        raise TokenRefused("The access token has expired; ask /api/v1/token for a new one.")
    return AccessToken(
        sender_id, certificate_sha256, datetime.fromtimestamp(expires_at, now.tzinfo)
    )


def _issuer(settings: Settings) -> str:
    return f"{settings.public_url}/api/v1"


def _key(settings: Settings) -> OctKey:
    # Derived, so that the secret key itself never signs anything a client sees.
    derived = hmac.new(settings.secret_key.encode(), b"ebox api access tokens", hashlib.sha256)
    return OctKey.import_key(derived.digest())
