"""Encryption at rest, on the default local store: round trips and every way it must fail."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest

from ebox.errors import ConfigError
from ebox.storage.services import (
    ContentIntegrityError,
    ContentNotFound,
    MasterKeyError,
    check_storage,
    delete_content,
    delete_contents,
    open_content,
    store_content,
    validate_master_key,
)
from tests.storage.helpers import (
    changed_settings,
    distinctive_plaintext,
    local_object_path,
    random_master_key,
)


def _open(stored, **changes):
    arguments = {
        "storage_key": stored.storage_key,
        "content_key": stored.content_key,
        "content_key_id": stored.content_key_id,
    }
    arguments.update(changes)
    return open_content(**arguments)


def test_content_round_trips_through_the_local_store(app):
    plaintext = distinctive_plaintext()
    stored = store_content(plaintext)
    with _open(stored) as opened:
        assert opened.read() == plaintext


def test_a_stream_is_stored_from_its_current_position(app):
    source = io.BytesIO(b"skipped|kept content")
    source.seek(8)
    stored = store_content(source)
    with _open(stored) as opened:
        assert opened.read() == b"kept content"
    assert stored.size_bytes == len(b"kept content")


def test_opened_content_is_seekable_and_starts_at_the_beginning(app):
    stored = store_content(b"0123456789")
    with _open(stored) as opened:
        assert opened.tell() == 0
        opened.seek(5)
        assert opened.read() == b"56789"


def test_size_and_sha256_describe_the_plaintext(app):
    stored = store_content(b"hello eBox")
    assert stored.size_bytes == 10
    assert stored.sha256 == hashlib.sha256(b"hello eBox").hexdigest()


def test_empty_content_round_trips(app):
    stored = store_content(b"")
    with _open(stored) as opened:
        assert opened.read() == b""
    assert stored.size_bytes == 0


def test_the_stored_object_holds_ciphertext_not_the_plaintext(app):
    plaintext = distinctive_plaintext()
    stored = store_content(plaintext)
    raw = local_object_path(app, stored.storage_key).read_bytes()
    assert raw[:5] == b"EBXC\x01"
    assert len(raw) == 5 + 12 + len(plaintext) + 16
    assert plaintext[:32] not in raw
    assert b"confidential" not in raw


def test_each_document_gets_its_own_key_and_nonce(app):
    first, second = store_content(b"same content"), store_content(b"same content")
    assert first.content_key != second.content_key
    assert first.storage_key != second.storage_key
    first_raw = local_object_path(app, first.storage_key).read_bytes()
    second_raw = local_object_path(app, second.storage_key).read_bytes()
    assert first_raw != second_raw
    assert first.content_key_id == second.content_key_id == app.config["EBOX"].master_key_id


def test_a_wrong_master_key_fails_loudly(app):
    stored = store_content(b"for the citizen only")
    with (
        changed_settings(app, master_key=random_master_key()),
        pytest.raises(MasterKeyError, match="does not unwrap with master key 'k1'"),
    ):
        _open(stored)


def test_a_content_key_wrapped_by_another_master_key_id_is_refused(app):
    stored = store_content(b"for the citizen only")
    with pytest.raises(MasterKeyError, match="wrapped by master key 'k0'"):
        _open(stored, content_key_id="k0")


def test_another_documents_content_key_does_not_open_this_one(app):
    mine, other = store_content(b"mine"), store_content(b"other")
    with pytest.raises(ContentIntegrityError, match="fails authentication"):
        _open(mine, content_key=other.content_key)


def test_a_damaged_content_key_fails_loudly(app):
    stored = store_content(b"for the citizen only")
    damaged = bytes([stored.content_key[0] ^ 1]) + stored.content_key[1:]
    with pytest.raises(MasterKeyError):
        _open(stored, content_key=damaged)
    with pytest.raises(ContentIntegrityError, match="damaged"):
        _open(stored, content_key=stored.content_key[:-8])


@pytest.mark.parametrize("offset", [5, 17, 17 + 500, -1], ids=["nonce", "first", "middle", "tag"])
def test_an_altered_byte_fails_authentication(app, offset):
    stored = store_content(distinctive_plaintext(1000))
    path = local_object_path(app, stored.storage_key)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ContentIntegrityError, match="fails authentication"):
        _open(stored)


@pytest.mark.parametrize(
    ("offset", "message"), [(0, "not an eBox encrypted object"), (4, "unknown format version")]
)
def test_an_altered_header_is_refused(app, offset, message):
    stored = store_content(b"for the citizen only")
    path = local_object_path(app, stored.storage_key)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x02
    path.write_bytes(bytes(raw))
    with pytest.raises(ContentIntegrityError, match=message):
        _open(stored)


@pytest.mark.parametrize("keep", [0, 10, 17 + 15])
def test_a_truncated_object_is_refused(app, keep):
    stored = store_content(b"for the citizen only")
    path = local_object_path(app, stored.storage_key)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ContentIntegrityError):
        _open(stored)


def test_an_object_moved_under_another_key_fails_authentication(app):
    victim, decoy = store_content(b"the victim's letter"), store_content(b"a decoy letter")
    decoy_path = local_object_path(app, decoy.storage_key)
    decoy_path.write_bytes(local_object_path(app, victim.storage_key).read_bytes())
    # The victim's own key and bytes, but under the decoy's storage key: refused.
    with pytest.raises(ContentIntegrityError, match="moved"):
        _open(victim, storage_key=decoy.storage_key)


def test_delete_is_idempotent(app):
    stored = store_content(b"short-lived")
    delete_content(stored.storage_key)
    delete_content(stored.storage_key)
    assert not local_object_path(app, stored.storage_key).exists()


def test_many_objects_are_deleted_together_the_others_kept(app):
    doomed = [store_content(f"expired {number}".encode()).storage_key for number in range(20)]
    kept = store_content(b"still within its period").storage_key
    delete_content(doomed[0])
    delete_contents(doomed)  # one of them missing already: no error
    assert not any(local_object_path(app, key).exists() for key in doomed)
    assert local_object_path(app, kept).exists()


def test_deleted_content_cannot_be_opened(app):
    stored = store_content(b"short-lived")
    delete_content(stored.storage_key)
    with pytest.raises(ContentNotFound):
        _open(stored)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (base64.b64encode(b"x" * 16).decode(), "exactly 32 bytes, it decodes to 16"),
        (base64.b64encode(b"x" * 33).decode(), "exactly 32 bytes, it decodes to 33"),
        ("not base64 at all!", "not valid base64"),
        ("", "it decodes to 0"),
    ],
)
def test_a_malformed_master_key_is_refused_naming_the_setting(value, message):
    with pytest.raises(MasterKeyError, match=message) as raised:
        validate_master_key(value)
    assert "EBOX_MASTER_KEY" in str(raised.value)
    assert isinstance(raised.value, ConfigError)


def test_a_well_formed_master_key_is_accepted():
    validate_master_key(random_master_key())
    validate_master_key(random_master_key() + "\n")


def test_storing_with_a_malformed_master_key_fails_before_anything_is_stored(app, tmp_path):
    with (
        changed_settings(app, master_key="c2hvcnQ=", storage_path=str(tmp_path)),
        pytest.raises(MasterKeyError, match="EBOX_MASTER_KEY"),
    ):
        store_content(b"never stored")
        with pytest.raises(MasterKeyError):
            check_storage()
    assert list(tmp_path.rglob("*")) == []
