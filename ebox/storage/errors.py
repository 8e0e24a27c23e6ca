"""What can go wrong with stored content. Each failure has its own class and a clear message."""

from __future__ import annotations

from ebox.errors import ConfigError


class StorageError(RuntimeError):
    """Base class of every document store failure."""


class StorageUnavailable(StorageError):
    """The store cannot be used at all: missing directory or bucket, no access, no answer."""


class ContentNotFound(StorageError):
    """No object exists under this storage key."""


class InvalidStorageKey(StorageError, ValueError):
    """The storage key is not one eBox could have made (and might escape the store)."""


class ContentIntegrityError(StorageError):
    """The stored object does not authenticate: altered, truncated, moved or the wrong key."""


class MasterKeyError(StorageError, ConfigError):
    """The master key is malformed, or is not the one that wrapped this content key."""
