"""Helpers for the storage tests: settings changed for one block, raw access to stored bytes."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from ebox.config import Settings


@contextmanager
def changed_settings(app: Flask, **changes: object) -> Iterator[Settings]:
    """Run a block with some eBox settings changed; the original settings come back after."""
    original: Settings = app.config["EBOX"]
    app.config["EBOX"] = dataclasses.replace(original, **changes)
    try:
        yield app.config["EBOX"]
    finally:
        app.config["EBOX"] = original


def random_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def local_object_path(app: Flask, storage_key: str) -> Path:
    return Path(app.config["EBOX"].storage_path, *storage_key.split("/"))


def distinctive_plaintext(size: int = 64 * 1024) -> bytes:
    """Recognisable bytes: any 32-byte slice of them appearing in an object would be a leak."""
    return (b"%PDF-1.7 confidential statement of benefits " * (size // 44 + 1))[:size]
