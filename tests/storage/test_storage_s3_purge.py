"""The purge removes a document's content from S3 too (moto's server, over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from ebox.retention.services import purge_expired
from tests.factories import create_citizen
from tests.retention.retention_helpers import assert_minimal_record, expired_document


@pytest.mark.slow
def test_the_purge_removes_the_content_from_s3(
    s3_app: Flask, s3_client: Any, s3_bucket: str
) -> None:
    document = expired_document(create_citizen())
    key = document.storage_key
    s3_client.head_object(Bucket=s3_bucket, Key=key)

    assert purge_expired().objects_removed == 1

    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=key)
    assert listed.get("KeyCount", 0) == 0
    assert_minimal_record(document)
