"""One webhook delivery over HTTP: the event's JSON, signed the Standard Webhooks way, POSTed to
the address checked just before (ebox.webhooks.addresses), with short time-outs, no redirect
followed and no more than a few kB of the answer read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import urllib3
from standardwebhooks import Webhook

from ebox.config import Settings
from ebox.webhooks.addresses import RefusedAddress, Target, check_url

CONNECT_SECONDS = 5.0
ANSWER_BYTES = 4096
USER_AGENT = "eBox-Webhooks/1"


def signed_headers(
    secret: bytes, event_id: str, body: str, moment: datetime | None = None
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (v1: HMAC-SHA256 of
    `{id}.{timestamp}.{body}` with the secret)."""
    moment = moment or datetime.now(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, moment, body),
    }


def send(url: str, secret: bytes, payload: dict[str, Any], settings: Settings) -> str:
    """POST payload to url; '' when the receiver answered 2xx, else what went wrong."""
    try:
        target = check_url(url, settings)
    except RefusedAddress as refusal:
        return str(refusal)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    headers = {
        "Host": _host_header(target),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(secret, str(payload["id"]), body),
    }
    try:
        status = _post(target, body.encode(), headers, settings)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        return f"no answer from the receiver ({_reason(error)})"
    return "" if 200 <= status < 300 else f"the receiver answered HTTP {status}"


def _post(target: Target, body: bytes, headers: dict[str, str], settings: Settings) -> int:
    total = float(settings.webhook_timeout_seconds)
    timeout = urllib3.Timeout(total=total, connect=min(CONNECT_SECONDS, total))
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        # Connected to the checked address, the certificate checked for the URL's name.
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port)
    with pool:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            timeout=timeout,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            response.read(ANSWER_BYTES)  # read a little so the receiver is not cut off mid-way
        finally:
            response.release_conn()
        return int(response.status)


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "connection refused"
    if isinstance(error, urllib3.exceptions.SSLError):
        return "TLS failed"
    return type(error).__name__
