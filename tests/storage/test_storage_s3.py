"""The S3 store against moto's server over real HTTP on loopback."""

from __future__ import annotations

import pytest

from ebox.storage.services import (
    ContentIntegrityError,
    ContentNotFound,
    StorageUnavailable,
    check_storage,
    delete_content,
    delete_contents,
    list_storage_keys,
    open_content,
    store_content,
)
from tests.storage.helpers import changed_settings, distinctive_plaintext


def _open(stored, **changes):
    arguments = {
        "storage_key": stored.storage_key,
        "content_key": stored.content_key,
        "content_key_id": stored.content_key_id,
    }
    arguments.update(changes)
    return open_content(**arguments)


def _raw(s3_client, bucket, key):
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _bucket_names(s3_client):
    return {bucket["Name"] for bucket in s3_client.list_buckets()["Buckets"]}


def test_content_round_trips_through_an_s3_bucket(s3_app):
    plaintext = distinctive_plaintext()
    stored = store_content(plaintext)
    with _open(stored) as opened:
        assert opened.read() == plaintext
    assert stored.size_bytes == len(plaintext)


def test_the_s3_object_holds_ciphertext_not_the_plaintext(s3_app, s3_client, s3_bucket):
    plaintext = distinctive_plaintext()
    stored = store_content(plaintext)
    raw = _raw(s3_client, s3_bucket, stored.storage_key)
    assert raw[:5] == b"EBXC\x01"
    assert len(raw) == 5 + 12 + len(plaintext) + 16
    assert plaintext[:32] not in raw
    assert b"confidential" not in raw


def test_a_tampered_s3_object_fails_authentication(s3_app, s3_client, s3_bucket):
    stored = store_content(distinctive_plaintext(2000))
    raw = bytearray(_raw(s3_client, s3_bucket, stored.storage_key))
    raw[100] ^= 0x80
    s3_client.put_object(Bucket=s3_bucket, Key=stored.storage_key, Body=bytes(raw))
    with pytest.raises(ContentIntegrityError, match="fails authentication"):
        _open(stored)


def test_an_s3_object_moved_under_another_key_fails_authentication(s3_app, s3_client, s3_bucket):
    victim = store_content(b"the victim's letter")
    moved_key = "ff/ee/moved-object"
    s3_client.copy_object(
        Bucket=s3_bucket,
        Key=moved_key,
        CopySource={"Bucket": s3_bucket, "Key": victim.storage_key},
    )
    with pytest.raises(ContentIntegrityError, match="moved"):
        _open(victim, storage_key=moved_key)


def test_deleting_from_s3_is_idempotent(s3_app, s3_client, s3_bucket):
    stored = store_content(b"short-lived")
    delete_content(stored.storage_key)
    delete_content(stored.storage_key)
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=stored.storage_key)
    assert listed.get("KeyCount") == 0


def test_many_s3_objects_are_deleted_together_the_others_kept(s3_app, s3_client, s3_bucket):
    doomed = [store_content(f"expired {number}".encode()).storage_key for number in range(5)]
    kept = store_content(b"still within its period").storage_key
    already_gone = doomed[0]
    delete_content(already_gone)
    delete_contents(doomed)  # one of them missing already: no error
    left = {item["Key"] for item in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
    assert kept in left
    assert not set(doomed) & left


def test_opening_a_missing_s3_object_raises_content_not_found(s3_app):
    stored = store_content(b"short-lived")
    delete_content(stored.storage_key)
    with pytest.raises(ContentNotFound, match=stored.storage_key):
        _open(stored)


def test_the_s3_store_lists_the_keys_it_holds(s3_app):
    stored = {store_content(f"document {number}".encode()).storage_key for number in range(3)}
    assert stored <= set(list_storage_keys())


def test_check_storage_passes_for_an_existing_bucket(s3_app):
    check_storage()


def test_check_storage_fails_for_a_missing_bucket(s3_app, s3_client):
    with (
        changed_settings(s3_app, s3_bucket="ebox-no-such-bucket"),
        pytest.raises(StorageUnavailable, match=r"'ebox-no-such-bucket'.*does not exist"),
    ):
        check_storage()
    assert "ebox-no-such-bucket" not in _bucket_names(s3_client)


def test_storing_into_a_missing_bucket_fails_and_creates_no_bucket(s3_app, s3_client):
    with (
        changed_settings(s3_app, s3_bucket="ebox-missing-bucket"),
        pytest.raises(StorageUnavailable, match="eBox creates no bucket"),
    ):
        store_content(b"nowhere to go")
    assert "ebox-missing-bucket" not in _bucket_names(s3_client)


def test_readiness_reports_a_missing_bucket(s3_app, client):
    with changed_settings(s3_app, s3_bucket="ebox-no-such-bucket"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["storage"] == "failed"


def test_an_unreachable_endpoint_is_reported_unavailable(s3_app):
    with (
        changed_settings(s3_app, s3_endpoint_url="http://127.0.0.1:9"),
        pytest.raises(StorageUnavailable, match="cannot be reached"),
    ):
        check_storage()


def test_the_s3_client_is_built_once_per_application(s3_app):
    store_content(b"one")
    client = s3_app.extensions["ebox.storage"][1].client
    store_content(b"two")
    assert s3_app.extensions["ebox.storage"][1].client is client
