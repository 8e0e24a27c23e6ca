"""The S3-compatible object store (AWS S3, MinIO, Ceph, ...), through boto3.

eBox never creates a bucket: the operator does, with its policies (no public access, versioning
or object lock as they decide). A missing bucket is a StorageUnavailable error naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ebox.storage.backends import Readable, check_key, is_storage_key
from ebox.storage.errors import ContentNotFound, StorageUnavailable

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_DELETE_OBJECTS_LIMIT = 1000
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_OBJECT = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class S3Store:
    """Objects in one bucket. One client per store: boto3 clients are thread-safe."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str = "",
        region: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
    ) -> None:
        if not bucket:
            raise StorageUnavailable("EBOX_S3_BUCKET is empty: name the documents bucket")
        self.bucket = bucket
        self.endpoint = endpoint_url or "AWS S3"
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            # Empty settings fall back to boto3's own chain (instance role, environment).
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # Most S3-compatible servers want the bucket in the path, not the host name.
                s3={"addressing_style": "path"} if endpoint_url else None,
            ),
        )
        # Below the threshold an upload is one PUT streamed from the file; above it, parts are
        # held in memory, so both their size and their number in flight stay small.
        self.transfer = TransferConfig(
            multipart_threshold=64 * MIB,
            multipart_chunksize=16 * MIB,
            max_concurrency=2,
            preferred_transfer_client="classic",
        )

    def put(self, key: str, stream: BinaryIO) -> None:
        with self._errors(key):
            self.client.upload_fileobj(stream, self.bucket, check_key(key), Config=self.transfer)

    def get(self, key: str) -> Readable:
        with self._errors(key):
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        body: Readable = response["Body"]
        return body

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success: idempotent as it is.
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def delete_many(self, keys: Sequence[str]) -> None:
        # One DeleteObjects request per 1,000 keys (S3's limit), rather than one request each.
        for start in range(0, len(keys), _DELETE_OBJECTS_LIMIT):
            chunk = [{"Key": check_key(key)} for key in keys[start : start + _DELETE_OBJECTS_LIMIT]]
            with self._errors(chunk[0]["Key"]):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            failed = response.get("Errors") or []
            if failed:
                first = failed[0]
                raise StorageUnavailable(
                    f"the object store did not delete {len(failed)} of {len(chunk)} objects "
                    f"(first: {first.get('Key')!r}, {first.get('Code')}: {first.get('Message')})"
                )

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ContentNotFound:
            return False
        return True

    def stored_at(self, key: str) -> datetime | None:
        try:
            with self._errors(key):
                head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ContentNotFound:
            return None
        modified: datetime = head["LastModified"]
        return modified

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING_OBJECT | _MISSING_BUCKET:
                raise self._missing_bucket() from exc
            raise StorageUnavailable(self._describe(f"answers {code}")) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(self._describe(f"cannot be reached: {exc}")) from exc

    def keys(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(""):
            for page in paginator.paginate(Bucket=self.bucket):
                for item in page.get("Contents", []):
                    if is_storage_key(item["Key"]):
                        yield item["Key"]

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Turn boto3's errors into the store's own, with a message an operator can act on."""
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING_BUCKET:
                raise self._missing_bucket() from exc
            if code in _MISSING_OBJECT:
                raise ContentNotFound(f"no stored object under {key!r}") from exc
            if code in _DENIED:
                raise StorageUnavailable(self._describe(f"refuses access ({code})")) from exc
            raise
        except BotoCoreError as exc:
            raise StorageUnavailable(self._describe(f"cannot be reached: {exc}")) from exc

    def _missing_bucket(self) -> StorageUnavailable:
        return StorageUnavailable(
            self._describe("does not exist") + ": eBox creates no bucket, create it first"
        )

    def _describe(self, problem: str) -> str:
        return f"the S3 bucket {self.bucket!r} at {self.endpoint} (EBOX_S3_BUCKET) {problem}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
