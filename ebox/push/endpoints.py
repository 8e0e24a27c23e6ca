"""A subscription as a browser posts it, checked before it is stored and again before each push.

Everything in it comes from the client, so everything is checked:
- the endpoint is where we will send an HTTP request: only https, on a host of the push services
  allowed by EBOX_PUSH_SERVICES, on the default port, so that a forged endpoint cannot make the
  worker call anything else (our own network, a metadata service: SSRF). Outside production a
  loopback endpoint is allowed too, for the tests' push service;
- the keys must be what RFC 8291 needs: p256dh a P-256 point (65 bytes, uncompressed), auth 16
  bytes, both base64url.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from ebox.config import Settings
from ebox.push.models import MAX_ENDPOINT_LENGTH

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_LOOPBACK_NAMES = ("localhost",)


class InvalidSubscription(ValueError):
    """What is wrong, in words for the log and the answer (no value from the request)."""


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str  # base64url without padding
    auth: str


def parse_subscription(data: object, settings: Settings) -> Subscription:
    """The subscription in a PushSubscription.toJSON() object, or InvalidSubscription."""
    if not isinstance(data, dict):
        raise InvalidSubscription("the subscription is not a JSON object")
    endpoint = data.get("endpoint")
    keys = data.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise InvalidSubscription("the subscription has no endpoint or no keys")
    refusal = endpoint_refusal(endpoint, settings)
    if refusal:
        raise InvalidSubscription(refusal)
    p256dh = _decoded(keys.get("p256dh"), "p256dh")
    auth = _decoded(keys.get("auth"), "auth")
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise InvalidSubscription("p256dh is not an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise InvalidSubscription("p256dh is not a point of P-256") from None
    if len(auth) != 16:
        raise InvalidSubscription("auth is not 16 bytes")
    return Subscription(endpoint=endpoint, p256dh=_encoded(p256dh), auth=_encoded(auth))


def endpoint_refusal(endpoint: str, settings: Settings) -> str:
    """Why a push must not be sent to endpoint; empty when it may."""
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        return f"the endpoint is longer than {MAX_ENDPOINT_LENGTH} characters"
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return "the endpoint is not a URL"
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return "the endpoint is not a push service's URL"
    if _is_loopback(host):
        if settings.is_production:
            return "the endpoint is on loopback"
        return "" if parts.scheme in ("http", "https") else "the endpoint is not http(s)"
    if parts.scheme != "https":
        return "the endpoint is not https"
    if port not in (None, 443):
        return "the endpoint names a port"
    if not host_allowed(host, settings.push_services):
        return "the endpoint's host is not an allowed push service (EBOX_PUSH_SERVICES)"
    return ""


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """host is one of allowed, or a subdomain of one given as `*.domain`."""
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):  # ".notify.windows.com": a subdomain, never the domain
                return True
        elif host == entry:
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _decoded(value: object, name: str) -> bytes:
    if not isinstance(value, str) or len(value) > 200 or not _BASE64URL.fullmatch(value):
        raise InvalidSubscription(f"{name} is not base64url")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSubscription(f"{name} is not base64url") from None


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
