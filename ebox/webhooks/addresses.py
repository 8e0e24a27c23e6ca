"""Where a webhook may be sent: checked when a subscription is made and again before each
delivery, since a name may resolve elsewhere by then (DNS rebinding).

A sender chooses the URL, so it must not make the worker call anything but a public server:
https only in production (http too elsewhere, for a receiver on a laptop), no user name or
fragment, and every address the host resolves to must be globally routable: no loopback,
link-local, private, shared, multicast, unspecified or reserved address. Loopback is allowed
outside production when EBOX_WEBHOOK_ALLOW_LOOPBACK says so. The delivery then connects to the
address checked, not to the name again.

Unlike push endpoints (ebox.push.endpoints), which must be on a short list of push services'
hosts, a webhook may be any public server: hence a check on addresses rather than names.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ebox.config import Settings
from ebox.webhooks.models import MAX_URL_LENGTH


class RefusedAddress(ValueError):
    """Why a webhook URL may not be called, in words for the sender (no secret in them)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as the URL names it: the Host header and, for https, the certificate's name
    port: int
    path: str  # with the query
    address: str  # the checked address to connect to


def check_url(url: str, settings: Settings) -> Target:
    """The URL's target with its host resolved and checked, or RefusedAddress."""
    scheme, host, port, path = _parts(url, settings)
    return Target(scheme, host, port, path, _checked_address(host, port, settings))


def _parts(url: str, settings: Settings) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL_LENGTH:
        raise RefusedAddress(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedAddress("The URL is not a valid URL.") from None
    allowed = ("https",) if settings.is_production else ("https", "http")
    if parts.scheme not in allowed:
        raise RefusedAddress(
            "The URL must be https." if settings.is_production else "The URL must be http or https."
        )
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise RefusedAddress("The URL must name a host, without a user name or password.")
    if parts.fragment:
        raise RefusedAddress("The URL must not have a fragment.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default_port, path


def _checked_address(host: str, port: int, settings: Settings) -> str:
    """The host's first address, once every address it resolves to is allowed."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RefusedAddress("The URL's host cannot be resolved.") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise RefusedAddress("The URL's host cannot be resolved.")
    for address in addresses:
        refusal = address_refusal(address, settings)
        if refusal:
            raise RefusedAddress(refusal)
    return addresses[0]


def address_refusal(address: str, settings: Settings) -> str:
    """Why no webhook may be sent to this IP address; empty when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        if settings.webhook_allow_loopback and not settings.is_production:
            return ""
        return "The URL's host is a loopback address."
    if (
        ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    ):
        return "The URL's host is not a public address."
    return ""
