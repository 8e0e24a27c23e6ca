"""The local directory store: keys cannot escape it, writes are atomic, failures are clear."""

from __future__ import annotations

import io

import pytest

from ebox.storage.backends import LocalStore, make_storage_key
from ebox.storage.services import (
    InvalidStorageKey,
    StorageUnavailable,
    check_storage,
    delete_content,
    list_storage_keys,
    open_content,
    store_content,
)
from tests.storage.helpers import changed_settings

HOSTILE_KEYS = [
    "../outside",
    "../../etc/passwd",
    "/etc/passwd",
    "ab/../../outside",
    "ab/./cd",
    "ab//cd",
    "..",
    ".hidden",
    "ab\\..\\..\\outside",
    "nul\x00byte",
    "",
    "a" * 201,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_keys_that_could_escape_the_directory_are_refused(tmp_path, key):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(InvalidStorageKey):
        store.put(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidStorageKey):
        store.get(key)
    with pytest.raises(InvalidStorageKey):
        store.delete(key)
    with pytest.raises(InvalidStorageKey):
        store.exists(key)
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd"])
def test_the_public_functions_refuse_hostile_keys(app, key):
    with pytest.raises(InvalidStorageKey):
        delete_content(key)
    with pytest.raises(InvalidStorageKey):
        open_content(storage_key=key, content_key=b"k" * 40, content_key_id="k1")


def test_a_symlinked_folder_cannot_lead_outside_the_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "store"
    root.mkdir()
    (root / "ab").symlink_to(outside, target_is_directory=True)
    store = LocalStore(root)
    with pytest.raises(InvalidStorageKey, match="leaves the directory"):
        store.put("ab/cd/object", io.BytesIO(b"x"))
    assert list(outside.rglob("*")) == []


def test_generated_keys_are_accepted_and_spread_over_two_folder_levels(tmp_path):
    store = LocalStore(tmp_path)
    key = make_storage_key()
    store.put(key, io.BytesIO(b"ciphertext"))
    first, second, name = key.split("/")
    assert (first, second) == (name[:2], name[2:4])
    assert (tmp_path / first / second / name).read_bytes() == b"ciphertext"


def test_a_write_leaves_no_temporary_file_behind(tmp_path):
    store = LocalStore(tmp_path)
    store.put("ab/cd/object", io.BytesIO(b"ciphertext"))
    files = [path.name for path in tmp_path.rglob("*") if path.is_file()]
    assert files == ["object"]


class _BrokenStream(io.RawIOBase):
    """Gives some bytes, then fails, like a client that disconnects mid-upload."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.calls += 1
        if self.calls > 1:
            raise OSError("connection reset")
        buffer[:4] = b"part"
        return 4


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(OSError, match="connection reset"):
        store.put("ab/cd/object", _BrokenStream())
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
    assert not store.exists("ab/cd/object")


def test_rewriting_a_key_replaces_the_object_whole(tmp_path):
    store = LocalStore(tmp_path)
    store.put("ab/cd/object", io.BytesIO(b"first version, longer"))
    store.put("ab/cd/object", io.BytesIO(b"second"))
    with store.get("ab/cd/object") as stream:
        assert stream.read() == b"second"


def test_keys_lists_stored_objects_and_skips_foreign_files(app, tmp_path):
    with changed_settings(app, storage_path=str(tmp_path)):
        stored = [store_content(f"document {number}".encode()) for number in range(3)]
        (tmp_path / ".incoming-leftover").write_bytes(b"x")
        assert sorted(list_storage_keys()) == sorted(item.storage_key for item in stored)


def test_keys_of_a_store_never_written_to_is_empty(tmp_path):
    assert list(LocalStore(tmp_path / "not-yet").keys()) == []


def test_check_storage_creates_and_accepts_a_writable_directory(app, tmp_path):
    with changed_settings(app, storage_path=str(tmp_path / "documents")):
        check_storage()
    assert (tmp_path / "documents").is_dir()
    assert list((tmp_path / "documents").iterdir()) == []


def test_check_storage_fails_when_the_directory_cannot_be_made(app, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a directory")
    with (
        changed_settings(app, storage_path=str(blocker / "documents")),
        pytest.raises(StorageUnavailable, match="EBOX_STORAGE_PATH"),
    ):
        check_storage()


def test_readiness_reports_a_broken_document_store(app, client, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a directory")
    with changed_settings(app, storage_path=str(blocker / "documents")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["storage"] == "failed"


def test_the_store_is_built_once_per_application(app):
    store_content(b"one")
    first = app.extensions["ebox.storage"][1]
    store_content(b"two")
    assert app.extensions["ebox.storage"][1] is first
