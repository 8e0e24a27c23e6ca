"""Publish a message with its documents through eBox's REST API, then follow what becomes of it.

    python examples/rest_example.py --url https://ebox.example --key backoffice-key.pem \
        --cert backoffice-cert.pem --enterprise-number 0123456749 \
        --recipient 85073003328 --message-type TAX --pdf letter.pdf [--attach annex.pdf ...]

    python examples/rest_example.py ... --events [--after CURSOR]

The first form prints the id eBox gives the message; the second prints the events of your
messages after the cursor (all that are kept when none is given) and the cursor to pass next
time. The certificate must be one registered for your institution (the one you sign SOAP requests
with). A refusal prints its problem's code and detail and exits with status 1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MEDIA_TYPES = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg"}


class Refused(Exception):
    """eBox answered a problem (RFC 9457): its code and detail."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(f"{problem.get('code')}: {problem.get('detail')}")
        self.code = str(problem.get("code"))


def access_token(url: str, key_pem: bytes, cert_pem: bytes, enterprise_number: str) -> str:
    """Client credentials with private_key_jwt: a one-use assertion signed with our key."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    if isinstance(certificate.public_key(), ec.EllipticCurvePublicKey):
        key: RSAKey | ECKey = ECKey.import_key(key_pem)
        algorithm = "ES256"
    else:
        key, algorithm = RSAKey.import_key(key_pem), "RS256"
    der = certificate.public_bytes(Encoding.DER)
    now = int(time.time())
    header = {"alg": algorithm, "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
    claims = {
        "iss": enterprise_number,
        "sub": enterprise_number,
        "aud": f"{url}/api/v1/token",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    assertion = jwt.encode(header, claims, key, algorithms=[algorithm])
    answer = requests.post(
        f"{url}/api/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=30,
    )
    return str(_json(answer)["access_token"])


def publish(
    url: str,
    token: str,
    *,
    message: dict[str, Any],
    files: list[Path],
    idempotency_key: str,
) -> dict[str, Any]:
    """POST /api/v1/messages: the message as JSON, then each document, main PDF first. Send it
    again with the same Idempotency-Key after a timeout: eBox answers the first outcome."""
    message = dict(message)
    message["documents"] = [
        {
            "fileName": path.name,
            "mediaType": MEDIA_TYPES.get(path.suffix.lower(), "application/pdf"),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        for path in files
    ]
    parts: list[tuple[str, tuple[str | None, bytes, str]]] = [
        ("message", (None, json.dumps(message).encode(), "application/json"))
    ]
    for path, described in zip(files, message["documents"], strict=True):
        parts.append(("documents", (path.name, path.read_bytes(), described["mediaType"])))
    answer = requests.post(
        f"{url}/api/v1/messages",
        files=parts,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": idempotency_key},
        timeout=60,
    )
    return _json(answer)


def events(url: str, token: str, after: str | None) -> dict[str, Any]:
    """GET /api/v1/events: the next page after the cursor, and the cursor for next time."""
    params = {"limit": "100", **({"after": after} if after else {})}
    answer = requests.get(
        f"{url}/api/v1/events",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return _json(answer)


def _json(answer: requests.Response) -> dict[str, Any]:
    if answer.headers.get("Content-Type", "").startswith("application/problem+json"):
        raise Refused(answer.json())
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Publish over eBox's REST API.")
    parser.add_argument("--url", required=True, help="eBox base URL, e.g. https://ebox.example")
    parser.add_argument("--key", required=True, type=Path, help="private key (PEM)")
    parser.add_argument("--cert", required=True, type=Path, help="registered certificate (PEM)")
    parser.add_argument("--enterprise-number", required=True, help="your 10-digit number")
    parser.add_argument("--events", action="store_true", help="print the events, publish nothing")
    parser.add_argument("--after", help="the cursor printed last time (with --events)")
    parser.add_argument("--recipient", help="national register number")
    parser.add_argument("--message-type", help="one of your message type codes")
    parser.add_argument("--pdf", type=Path, help="the main PDF document")
    parser.add_argument("--attach", type=Path, action="append", default=[], help="an attachment")
    parser.add_argument("--title", help="title shown to the citizen (default: the file name)")
    parser.add_argument("--language", default="nl", choices=["nl", "fr", "de", "en"])
    parser.add_argument("--ticket", help="your reference, 1-25 characters (default: random)")
    args = parser.parse_args(argv)
    if not args.events and not (args.recipient and args.message_type and args.pdf):
        parser.error("--recipient, --message-type and --pdf are needed to publish")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    url = args.url.rstrip("/")
    try:
        token = access_token(
            url, args.key.read_bytes(), args.cert.read_bytes(), args.enterprise_number
        )
        if args.events:
            page = events(url, token, args.after)
            for event in page["events"]:
                print(json.dumps(event))
            print(f"next cursor: {page['next']}")
            return 0
        message = {
            "recipient": args.recipient,
            "messageType": args.message_type,
            "language": args.language,
            "title": args.title or args.pdf.stem,
            "reference": {"ticket": args.ticket or uuid.uuid4().hex[:25]},
        }
        published = publish(
            url,
            token,
            message=message,
            files=[args.pdf, *args.attach],
            idempotency_key=str(uuid.uuid4()),
        )
    except Refused as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return 1
    print(published["id"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
