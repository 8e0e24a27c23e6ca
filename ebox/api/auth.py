"""Who is calling the REST API: OAuth 2.0 client credentials with private_key_jwt (RFC 7523).

A sender's back office proves itself exactly as on SOAP, with the key of a certificate registered
to it: it signs a short JWT (the client assertion) and exchanges it at /api/v1/token for an access
token of a few minutes (ebox.api.tokens). The assertion's header carries the certificate (`x5c`,
as a SOAP request carries its BinarySecurityToken), so the same certificate, registered and
rotated the same way, serves both; the certificate's sender is the client, and `iss` and `sub`
must be its enterprise number. Each assertion is accepted once (its `jti`, in the same durable
replay guard as signed SOAP requests), and only for a few minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import g, request
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.senders.directory import Signer, find_signer, find_signer_by_fingerprint
from ebox.senders.models import Sender
from ebox.soap import faults
from ebox.soap.faults import SoapFault
from ebox.soap.services import remember_request
from ebox.soap.wssecurity import check_may_sign

from . import problems, tokens
from .problems import ApiProblem

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Asymmetric signatures only: "none" and the HMACs would need no key of the sender's.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=60)
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_JTI_LENGTH = 200


class _AssertionRegistry(JWSRegistry):
    # The header carries the certificate (x5c): a few kB, beyond joserfc's 512-byte default.
    max_header_length = 12 * 1024
    max_payload_length = 4 * 1024


_REGISTRY = _AssertionRegistry(algorithms=ALGORITHMS)


@dataclass(frozen=True)
class Client:
    """The sender a valid client assertion proves, and the certificate that proved it."""

    signer: Signer
    expires_at: datetime
    jti: str

    @property
    def sender(self) -> Sender:
        return self.signer.certificate.sender


def token_endpoint_url() -> str:
    """The assertion's audience: the token endpoint's public address (RFC 7523 §3)."""
    return f"{current_settings().public_url}/api/v1/token"


def authenticate_client(form: dict[str, str], *, now: datetime) -> Client:
    """The client of a token request, or an ApiProblem with the code saying what was wrong."""
    if form.get("grant_type") != "client_credentials":
        raise _oauth(
            400,
            problems.GRANT_TYPE_UNSUPPORTED,
            "unsupported_grant_type",
            "grant_type must be client_credentials.",
        )
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _oauth(
            401,
            problems.ASSERTION_INVALID,
            "invalid_client",
            f"client_assertion_type must be {ASSERTION_TYPE}.",
        )
    assertion = form.get("client_assertion", "")
    header = _header(assertion)
    signer = _signer(header, now)
    g.api_sender_id = signer.certificate.sender_id  # known from here on: refusals are audited
    claims = _verified_claims(assertion, header["alg"], signer)
    client_id = signer.certificate.sender.enterprise_number
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _oauth(
            401,
            problems.CLIENT_MISMATCH,
            "invalid_client",
            "iss and sub must both be the enterprise number of the sender whose "
            "certificate signed the assertion.",
        )
    if form.get("client_id") not in (None, "", client_id):
        raise _oauth(
            401,
            problems.CLIENT_MISMATCH,
            "invalid_client",
            "client_id is not the enterprise number of the certificate's sender.",
        )
    _check_audience(claims.get("aud"))
    expires_at = _check_times(claims, now)
    jti = _check_jti(claims.get("jti"))
    # In the replay guard beside signed SOAP requests' keys; "jwt" keeps the two apart.
    seen = f"jwt {signer.certificate.fingerprint_sha256} {jti}"
    key = hashlib.sha256(seen.encode()).hexdigest()
    if not remember_request(key, expires_at=expires_at + CLOCK_SKEW):
        raise _oauth(
            401,
            faults.REPLAY,
            "invalid_client",
            "This client assertion was already used; sign a new one with a new jti.",
        )
    return Client(signer, expires_at, jti)


def _oauth(status: int, code: str, error: str, detail: str) -> ApiProblem:
    """A token endpoint refusal: a problem that OAuth clients can read too (RFC 6749 §5.2)."""
    return ApiProblem(status, code, detail, extra={"error": error, "error_description": detail})


def _header(assertion: str) -> dict[str, Any]:
    if not assertion or len(assertion) > MAX_ASSERTION_LENGTH:
        raise _oauth(
            401,
            problems.ASSERTION_INVALID,
            "invalid_client",
            "client_assertion is missing or longer than 16 kB.",
        )
    try:
        header = jws.extract_compact(assertion.encode("ascii"), registry=_REGISTRY).headers()
    except (JoseError, ValueError, UnicodeError):
        raise _oauth(
            401,
            problems.ASSERTION_INVALID,
            "invalid_client",
            "client_assertion is not a signed JWT in compact form.",
        ) from None
    if header.get("alg") not in ALGORITHMS:
        raise _oauth(
            401,
            faults.SIGNATURE_ALGORITHM_REFUSED,
            "invalid_client",
            f"The assertion must be signed with one of {', '.join(ALGORITHMS)}.",
        )
    return header


def _signer(header: dict[str, Any], now: datetime) -> Signer:
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise _oauth(
            401,
            problems.ASSERTION_INVALID,
            "invalid_client",
            "The assertion's header must carry the signing certificate in x5c.",
        )
    try:
        der = base64.b64decode(chain[0], validate=True)
        signer = find_signer(der, now=now)
    except (binascii.Error, ValueError):
        raise _oauth(
            401,
            faults.SIGNATURE_INVALID,
            "invalid_client",
            "x5c[0] is not a base64 DER X.509 certificate.",
        ) from None
    try:
        return check_may_sign(signer, now)
    except SoapFault as fault:
        raise _oauth(
            problems.status_of(fault.code), fault.code, "invalid_client", fault.message
        ) from None


def _verified_claims(assertion: str, algorithm: str, signer: Signer) -> dict[str, Any]:
    key: RSAKey | ECKey
    try:
        key = (RSAKey if algorithm[0] in "RP" else ECKey).import_key(signer.public_key)  # type: ignore[arg-type]
        token = jwt.decode(assertion, key, algorithms=[algorithm], registry=_REGISTRY)
    except (BadSignatureError, JoseError, ValueError, TypeError):
        raise _oauth(
            401,
            faults.SIGNATURE_INVALID,
            "invalid_client",
            "The assertion's signature does not verify with the key of the certificate in x5c.",
        ) from None
    return dict(token.claims)


def _check_audience(audience: object) -> None:
    expected = token_endpoint_url()
    audiences = audience if isinstance(audience, list) else [audience]
    if expected not in audiences:
        raise _oauth(
            401,
            problems.AUDIENCE_INVALID,
            "invalid_client",
            f"The assertion's aud must be {expected}.",
        )


def _check_times(claims: dict[str, Any], now: datetime) -> datetime:
    try:
        expires_at = datetime.fromtimestamp(int(claims["exp"]), now.tzinfo)
        issued_at = (
            None if "iat" not in claims else datetime.fromtimestamp(int(claims["iat"]), now.tzinfo)
        )
        not_before = (
            None if "nbf" not in claims else datetime.fromtimestamp(int(claims["nbf"]), now.tzinfo)
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        raise _oauth(
            401,
            problems.ASSERTION_INVALID,
            "invalid_client",
            "The assertion needs exp (and iat, nbf if given) as NumericDate.",
        ) from None
    if expires_at + CLOCK_SKEW < now:
        raise _oauth(401, faults.TIMESTAMP_INVALID, "invalid_client", "The assertion has expired.")
    if expires_at - now > MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise _oauth(
            401,
            faults.TIMESTAMP_INVALID,
            "invalid_client",
            "The assertion may be valid for at most 5 minutes from now.",
        )
    for moment in (issued_at, not_before):
        if moment is not None and moment > now + CLOCK_SKEW:
            raise _oauth(
                401,
                faults.TIMESTAMP_INVALID,
                "invalid_client",
                "The assertion's iat or nbf is in the future (more than 60 s ahead).",
            )
    return expires_at


def _check_jti(jti: object) -> str:
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise _oauth(
            401,
            problems.ASSERTION_INVALID,
            "invalid_client",
            "The assertion needs a jti of 1 to 200 characters, new for each assertion.",
        )
    return jti


# --- calls with an access token ----------------------------------------------------------


def authenticate_call() -> Sender:
    """The sender of an API call, from its bearer token; every rule checked again now."""
    value = _bearer_token()
    settings = current_settings()
    now = utcnow()
    try:
        token = tokens.read(settings, value, now=now)
    except tokens.TokenRefused as refusal:
        raise ApiProblem(401, problems.TOKEN_INVALID, str(refusal)) from None
    try:
        signer = check_may_sign(find_signer_by_fingerprint(token.certificate_sha256, now=now), now)
    except SoapFault as fault:
        raise problems.from_fault(fault) from None
    if signer.certificate.sender_id != token.sender_id:  # a certificate moved: never, but be sure
        raise ApiProblem(401, problems.TOKEN_INVALID, "The access token's certificate has changed.")
    g.api_sender_id = token.sender_id
    g.api_certificate_sha256 = token.certificate_sha256
    g.api_sender = signer.certificate.sender
    return signer.certificate.sender


def _bearer_token() -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiProblem(
            401,
            problems.TOKEN_MISSING,
            "The call needs an access token: Authorization: Bearer <token> from /api/v1/token.",
        )
    return value.strip()


def current_sender() -> Sender:
    """The sender the current call was authenticated as (the blueprint authenticated it)."""
    sender: Sender = g.api_sender
    return sender


def current_certificate_sha256() -> str:
    fingerprint: str = g.api_certificate_sha256
    return fingerprint
