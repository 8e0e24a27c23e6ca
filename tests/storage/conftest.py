"""An S3-compatible server (moto) on loopback for the whole test session, spoken to over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from flask import Flask
from moto.server import ThreadedMotoServer

from tests.storage.helpers import changed_settings

BUCKET = "ebox-test-documents"
REGION = "eu-west-1"
# Dummy credentials: moto accepts any, and they never leave the loopback interface.
CREDENTIALS = {"s3_access_key_id": "test-key-id", "s3_secret_access_key": "test-secret"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1, on a port the system chose."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A client of the test's own, to look at (and tamper with) what eBox stored."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["s3_access_key_id"],
        aws_secret_access_key=CREDENTIALS["s3_secret_access_key"],
    )


@pytest.fixture(scope="session")
def s3_bucket(s3_client: Any) -> str:
    """The bucket, created by the test as an operator would: eBox never creates one."""
    s3_client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return BUCKET


@pytest.fixture
def s3_app(app: Flask, s3_endpoint: str, s3_bucket: str) -> Iterator[Flask]:
    """The test application, storing into the moto bucket for the duration of one test."""
    with changed_settings(
        app,
        storage_backend="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=s3_bucket,
        s3_region=REGION,
        **CREDENTIALS,
    ):
        yield app
