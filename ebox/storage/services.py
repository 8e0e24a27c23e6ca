"""Document content storage, encrypted at rest. The only way content enters or leaves the store.

The store (a local directory or an S3 bucket, EBOX_STORAGE) only ever holds ciphertext; the
format and the key handling are described in ebox.storage.crypto. The caller keeps the wrapped
content key in the document's row: without it the stored object cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from flask import current_app

from ebox.config import Settings, current_settings
from ebox.storage import crypto
from ebox.storage.backends import LocalStore, ObjectStore, check_key, make_storage_key
from ebox.storage.crypto import validate_master_key
from ebox.storage.errors import (
    ContentIntegrityError,
    ContentNotFound,
    InvalidStorageKey,
    MasterKeyError,
    StorageError,
    StorageUnavailable,
)

__all__ = [
    "ContentIntegrityError",
    "ContentNotFound",
    "InvalidStorageKey",
    "MasterKeyError",
    "StorageError",
    "StorageUnavailable",
    "StoredContent",
    "check_storage",
    "delete_content",
    "list_storage_keys",
    "open_content",
    "store_content",
    "validate_master_key",
]

log = logging.getLogger(__name__)
_EXTENSION = "ebox.storage"


@dataclass(frozen=True)
class StoredContent:
    """What the caller keeps: where the object is, its wrapped key, facts about the plaintext."""

    storage_key: str
    content_key: bytes
    content_key_id: str
    size_bytes: int
    sha256: str  # hex digest of the plaintext


def store_content(source: BinaryIO | bytes) -> StoredContent:
    """Encrypt `source` under a fresh data key and store it under a fresh storage key."""
    settings = current_settings()
    data_key = crypto.new_data_key()
    wrapped = crypto.wrap_data_key(data_key, master_key=settings.current_master_key)
    storage_key = make_storage_key()
    encrypted = crypto.encrypt(source, data_key=data_key, storage_key=storage_key)
    with encrypted.file:
        _store().put(storage_key, encrypted.file)
    log.info("stored object %s (%d bytes)", storage_key, encrypted.size_bytes)
    return StoredContent(
        storage_key=storage_key,
        content_key=wrapped,
        content_key_id=settings.master_key_id,
        size_bytes=encrypted.size_bytes,
        sha256=encrypted.sha256,
    )


def open_content(*, storage_key: str, content_key: bytes, content_key_id: str) -> BinaryIO:
    """The decrypted, authenticated content: a seekable file at position 0 (close it)."""
    check_key(storage_key)
    data_key = unwrap_content_key(content_key, content_key_id)
    with closing(_store().get(storage_key)) as stream:
        return crypto.decrypt(stream, data_key=data_key, storage_key=storage_key)


def delete_content(storage_key: str) -> None:
    """Remove the stored object; deleting what is already gone is not an error."""
    _store().delete(storage_key)
    log.info("deleted object %s", storage_key)


def delete_contents(storage_keys: Sequence[str]) -> None:
    """Remove many stored objects at once (the purge's batches); missing ones are no error."""
    if storage_keys:
        _store().delete_many(storage_keys)
        log.info("deleted %d objects", len(storage_keys))


def stored_at(storage_key: str) -> datetime | None:
    """When the object was written (None if there is none): the orphan pass spares new ones."""
    return _store().stored_at(storage_key)


def check_storage() -> None:
    """Raise StorageError unless the store can be used (the readiness probe calls this)."""
    current_settings().master_key_ring()  # every master key well formed
    _store().check()


def list_storage_keys() -> Iterator[str]:
    """Every storage key in the store, for reconciling objects with documents."""
    return _store().keys()


def unwrap_content_key(content_key: bytes, content_key_id: str) -> bytes:
    """The document's data key, unwrapped by the master key named `content_key_id`."""
    ring = current_settings().master_key_ring()
    if content_key_id not in ring:
        raise MasterKeyError(
            f"the content key was wrapped by master key {content_key_id!r}, which is not "
            f"configured (the master keys are {', '.join(repr(key_id) for key_id in ring)})"
        )
    return crypto.unwrap_data_key(
        content_key, master_key=ring[content_key_id], master_key_id=content_key_id
    )


def _store() -> ObjectStore:
    """The application's store, built once per app and rebuilt only if its settings change."""
    settings = current_settings()
    wanted = _store_settings(settings)
    cached = current_app.extensions.get(_EXTENSION)
    if cached is None or cached[0] != wanted:
        cached = (wanted, _build_store(settings))
        current_app.extensions[_EXTENSION] = cached
    store: ObjectStore = cached[1]
    return store


def _store_settings(settings: Settings) -> tuple[str, ...]:
    return (
        settings.storage_backend,
        settings.storage_path,
        settings.s3_endpoint_url,
        settings.s3_bucket,
        settings.s3_region,
        settings.s3_access_key_id,
        settings.s3_secret_access_key,
    )


def _build_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "local":
        return LocalStore(settings.storage_path)
    if settings.storage_backend == "s3":
        from ebox.storage.s3 import S3Store  # boto3 is slow to import: only when used

        return S3Store(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    raise StorageUnavailable(
        f"EBOX_STORAGE must be 'local' or 's3', not {settings.storage_backend!r}"
    )
