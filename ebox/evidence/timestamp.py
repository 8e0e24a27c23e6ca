"""RFC 3161 timestamps: a timestamp authority (TSA) attests that some bytes existed at a time.

`request_timestamp` asks the authority over HTTP(S) for a token over SHA-256 of the data, with a
random nonce and certReq set (the token then carries the authority's certificate), and accepts
the reply only when it is granted, echoes the nonce and covers exactly the digest asked for.
Anything else raises TimestampError: a sealed evidence must not go out without the timestamp it
promises. The token's own signature is for verifiers to check (`openssl ts -verify` does).

The request is built with asn1crypto and posted with urllib rather than through pyHanko's
HTTPTimeStamper: that client is asynchronous (aiohttp), so a web request or a worker job would
have to run an event loop for it, and it checks the status and the nonce but not the message
imprint, which must be checked here anyway. A synchronous request keeps every check in one place.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import ssl
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import algos, cms, core, pem, tsp, x509

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 1024 * 1024  # a token is a few kilobytes; more is not a timestamp reply


class TimestampError(Exception):
    """No valid timestamp: the authority was unreachable, refused, or answered something else."""


def request_timestamp(
    url: str, data: bytes, *, trusted_root_pem: bytes | None = None, timeout: float = 10
) -> bytes:
    """The DER TimeStampToken (a CMS ContentInfo) the authority at url gives for SHA-256(data)."""
    return timestamp_digest(
        url, hashlib.sha256(data).digest(), trusted_root_pem=trusted_root_pem, timeout=timeout
    )


def timestamp_digest(
    url: str, imprint: bytes, *, trusted_root_pem: bytes | None = None, timeout: float = 10
) -> bytes:
    """The DER TimeStampToken over a SHA-256 digest already computed (a PDF signature's).

    With trusted_root_pem, the token's signature must verify and its signer chain to that root
    (for timeStamping): a token from anyone else is refused before it is embedded anywhere.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise TimestampError(f"timestamp authority URL must be http(s): {url!r}")
    if len(imprint) != hashlib.sha256().digest_size:
        raise ValueError("the imprint must be a SHA-256 digest")
    nonce = secrets.randbits(64)
    body = _post(url, _query(imprint, nonce).dump(), timeout)
    token = _checked_token(url, body, imprint, nonce)
    if trusted_root_pem is not None:
        _check_signed_by(url, token, imprint, trusted_root_pem)
    return token


def _check_signed_by(url: str, token: bytes, imprint: bytes, root_pem: bytes) -> None:
    # Imported here: only a configured authority root needs the validator.
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    _, _, der = pem.unarmor(root_pem)
    context = ValidationContext(trust_roots=[x509.Certificate.load(der)], allow_fetching=False)
    signed_data = cms.ContentInfo.load(token)["content"]
    try:
        status = asyncio.run(
            validate_tst_signed_data(
                signed_data, context, lambda algorithm: imprint if algorithm == "sha256" else b""
            )
        )
    except SignatureValidationError as exc:
        raise TimestampError(f"the token from {url} does not validate: {exc}") from exc
    if not (status["intact"] and status["valid"] and status["trust_problem_indic"] is None):
        raise TimestampError(
            f"the token from {url} is not signed by the configured timestamp authority"
        )


def token_time(token: bytes) -> datetime:
    """When the authority says the timestamped data existed (genTime, timezone-aware)."""
    moment: datetime = _tst_info(token)["gen_time"].native
    return moment


def token_imprint(token: bytes) -> bytes:
    """The SHA-256 digest the token covers; a verifier compares it with its own digest."""
    imprint = _tst_info(token)["message_imprint"]
    if imprint["hash_algorithm"]["algorithm"].native != "sha256":
        raise TimestampError("the timestamp token does not cover a SHA-256 digest")
    digest: bytes = imprint["hashed_message"].native
    return digest


def _query(imprint: bytes, nonce: int) -> Any:
    return tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "hashed_message": imprint,
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )


def _post(url: str, query: bytes, timeout: float) -> bytes:
    request = urllib.request.Request(  # noqa: S310 (scheme checked by the caller)
        url,
        data=query,
        headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
        method="POST",
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=timeout, context=_tls_context()
        ) as response:
            body: bytes = response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampError(
            f"timestamp authority {url} answered HTTP {exc.code} {exc.reason}"
        ) from exc
    except urllib.error.URLError as exc:
        raise TimestampError(f"timestamp authority {url} unreachable: {exc.reason}") from exc
    except OSError as exc:  # a timeout or a reset while reading the reply
        raise TimestampError(f"timestamp authority {url} unreachable: {exc}") from exc
    if len(body) > MAX_REPLY_BYTES:
        raise TimestampError(f"timestamp authority {url} sent an oversized reply")
    return body


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the system's trusted certificates is the slow part of a request."""
    return ssl.create_default_context()


def _checked_token(url: str, body: bytes, imprint: bytes, nonce: int) -> bytes:
    try:
        reply = _TimeStampResp.load(body, strict=True)
        status = reply["status"]
        if status["status"].native != "granted":
            texts = "; ".join(status["status_string"].native or [])
            failures = ", ".join(sorted(status["fail_info"].native or []))
            raise TimestampError(
                f"timestamp authority {url} refused: {status['status'].native}"
                f" ({texts or 'no reason given'}{'; ' + failures if failures else ''})"
            )
        token = reply["time_stamp_token"]
        info = _tst_info(token.dump())
        received_nonce = info["nonce"].native
        algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        hashed = info["message_imprint"]["hashed_message"].native
        certificates = token["content"]["certificates"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"timestamp authority {url} sent no readable reply: {exc}") from exc
    if received_nonce != nonce:
        raise TimestampError(f"timestamp authority {url} did not echo the request's nonce")
    if algorithm != "sha256" or hashed != imprint:
        raise TimestampError(f"timestamp authority {url} timestamped another digest than asked")
    if not certificates:
        raise TimestampError(f"timestamp authority {url} left out its certificate though asked")
    return bytes(token.dump())


class _TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp; asn1crypto's own makes the token mandatory, so a rejection
    (which has none) would not parse and its reason would be lost."""

    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _tst_info(token: bytes) -> Any:
    """The signed TSTInfo inside a token; raises TimestampError when token is not one."""
    try:
        content = cms.ContentInfo.load(token, strict=True)
        if content["content_type"].native != "signed_data":
            raise TimestampError("the timestamp token is not CMS SignedData")
        encapsulated = content["content"]["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TimestampError("the timestamp token does not hold a TSTInfo")
        info = encapsulated["content"].parsed
        _ = info.native  # parse it all now: a malformed token fails here, not in a caller
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"unreadable timestamp token: {exc}") from exc
    return info
