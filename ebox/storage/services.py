"""Document content storage, encrypted at rest. (First version: the storage helper refines it.)"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from flask import current_app


@dataclass(frozen=True)
class StoredContent:
    storage_key: str
    content_key: bytes
    content_key_id: str
    size_bytes: int
    sha256: str


def _root() -> Path:
    root = Path(current_app.config["EBOX"].storage_path)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _master_key() -> bytes:
    return base64.b64decode(current_app.config["EBOX"].master_key)


def store_content(source: BinaryIO | bytes) -> StoredContent:
    data = source if isinstance(source, bytes) else source.read()
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    storage_key = uuid.uuid4().hex
    (_root() / storage_key).write_bytes(nonce + AESGCM(key).encrypt(nonce, data, None))
    return StoredContent(
        storage_key=storage_key,
        content_key=aes_key_wrap(_master_key(), key),
        content_key_id=current_app.config["EBOX"].master_key_id,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def open_content(*, storage_key: str, content_key: bytes, content_key_id: str) -> BinaryIO:
    blob = (_root() / storage_key).read_bytes()
    key = aes_key_unwrap(_master_key(), content_key)
    return io.BytesIO(AESGCM(key).decrypt(blob[:12], blob[12:], None))


def delete_content(storage_key: str) -> None:
    (_root() / storage_key).unlink(missing_ok=True)


def check_storage() -> None:
    _root()
