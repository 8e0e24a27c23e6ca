"""The key that signs our pushes (VAPID, RFC 8292): a P-256 key pair. Push services accept a
subscription's messages only when they are signed by the key the browser subscribed with, so
the public half is given to the browser when it subscribes (as applicationServerKey).

Production names the key's file (EBOX_PUSH_VAPID_KEY); elsewhere one is made under
instance/push/ the first time it is needed.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ebox import key_files
from ebox.config import Settings

_loaded: dict[Path, ec.EllipticCurvePrivateKey] = {}


def key_path(settings: Settings) -> Path:
    """The key's file: the configured one, or the embedded default (made if missing)."""
    if settings.push_vapid_key:
        return Path(settings.push_vapid_key)
    path = settings.instance_path / "push" / "vapid-private.pem"
    if not path.exists():
        _generate(path)
    return path


def private_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    path = key_path(settings).resolve()
    key = _loaded.get(path)
    if key is None:
        key = key_files.check_vapid_key(
            str(path), refuse_shared=settings.is_production, setting="EBOX_PUSH_VAPID_KEY"
        )
        _loaded[path] = key
    return key


def public_key(settings: Settings) -> str:
    """The public key as the browser's PushManager takes it: the uncompressed point, base64url
    without padding."""
    point = (
        private_key(settings)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode("ascii")


def new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _generate(path: Path) -> None:
    """Write a new key, readable by its owner only. Two processes starting together keep the
    same one: the file appears at once, complete, or not at all (link fails if it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(new_key_pem())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
