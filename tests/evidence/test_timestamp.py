"""RFC 3161 timestamps from a real authority (OpenSSL's) on loopback, checked by `openssl ts`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import tsp

from ebox.evidence.timestamp import (
    TimestampError,
    request_timestamp,
    token_imprint,
    token_time,
)
from tests.evidence.tsa_server import TimestampAuthority, openssl_ts_verify, unreachable_url

DATA = b"the signature value of some evidence"


def changed_query(**changes: Any) -> Callable[[bytes], bytes]:
    """An alter_query for the test authority: the query as sent, but for the given fields."""

    def alter(query: bytes) -> bytes:
        native = tsp.TimeStampReq.load(query).native
        for field, value in changes.items():
            if field == "hashed_message":
                native["message_imprint"]["hashed_message"] = value
            else:
                native[field] = value
        return bytes(tsp.TimeStampReq(native).dump())

    return alter


def test_the_token_verifies_with_openssl(tsa: TimestampAuthority, tmp_path: Path) -> None:
    token = request_timestamp(tsa.url, DATA)
    result = openssl_ts_verify(tsa, DATA, token, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


def test_the_token_carries_the_authority_certificate(
    tsa: TimestampAuthority, tmp_path: Path
) -> None:
    token = request_timestamp(tsa.url, DATA)
    result = openssl_ts_verify(tsa, DATA, token, tmp_path, untrusted=False)
    assert result.returncode == 0, result.stderr


def test_the_token_does_not_vouch_for_other_data(tsa: TimestampAuthority, tmp_path: Path) -> None:
    token = request_timestamp(tsa.url, DATA)
    result = openssl_ts_verify(tsa, DATA + b".", token, tmp_path)
    assert result.returncode != 0
    assert "imprint mismatch" in result.stderr


def test_the_token_is_not_trusted_under_another_root(
    tsa: TimestampAuthority, tmp_path: Path
) -> None:
    with TimestampAuthority(tmp_path / "stranger") as stranger:
        token = request_timestamp(stranger.url, DATA)
    result = openssl_ts_verify(tsa, DATA, token, tmp_path, untrusted=False)
    assert result.returncode != 0


def test_with_the_authority_root_configured_a_token_of_anyone_else_is_refused(
    tsa: TimestampAuthority, tmp_path: Path
) -> None:
    root = Path(tsa.ca_pem_path).read_bytes()
    assert request_timestamp(tsa.url, DATA, trusted_root_pem=root)  # the configured authority

    with (
        TimestampAuthority(tmp_path / "stranger") as stranger,
        pytest.raises(TimestampError, match="not signed by the configured timestamp authority"),
    ):
        request_timestamp(stranger.url, DATA, trusted_root_pem=root)


def test_the_token_tells_its_time_and_digest(tsa: TimestampAuthority) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token = request_timestamp(tsa.url, DATA)
    assert before - timedelta(seconds=1) <= token_time(token) <= datetime.now(UTC)
    assert token_imprint(token) == hashlib.sha256(DATA).digest()


def test_the_query_asks_for_a_nonce_and_the_certificate(tmp_path: Path) -> None:
    queries: list[bytes] = []

    def keep(query: bytes) -> bytes:
        queries.append(query)
        return query

    with TimestampAuthority(tmp_path / "tsa", alter_query=keep) as authority:
        request_timestamp(authority.url, DATA)
        request_timestamp(authority.url, DATA)
    first, second = (tsp.TimeStampReq.load(query).native for query in queries)
    assert first["message_imprint"]["hash_algorithm"]["algorithm"] == "sha256"
    assert first["message_imprint"]["hashed_message"] == hashlib.sha256(DATA).digest()
    assert first["cert_req"] is True
    assert first["nonce"] is not None and first["nonce"] != second["nonce"]


def test_a_closed_port_is_a_clear_error() -> None:
    url = unreachable_url()
    with pytest.raises(TimestampError, match=r"unreachable: .*Connection refused") as caught:
        request_timestamp(url, DATA, timeout=2)
    assert url in str(caught.value)


def test_an_http_error_is_a_clear_error(tsa: TimestampAuthority) -> None:
    with pytest.raises(TimestampError, match="answered HTTP 404"):
        request_timestamp(tsa.url + "/elsewhere", DATA)


def test_a_rejection_is_an_error_with_its_reason(tmp_path: Path) -> None:
    with (
        TimestampAuthority(tmp_path / "tsa", digests="sha512") as sha512_only,
        pytest.raises(TimestampError, match=r"refused: rejection.*bad_alg"),
    ):
        request_timestamp(sha512_only.url, DATA)


def test_a_token_over_another_digest_is_refused(tmp_path: Path) -> None:
    other = changed_query(hashed_message=hashlib.sha256(b"something else").digest())
    with (
        TimestampAuthority(tmp_path / "tsa", alter_query=other) as authority,
        pytest.raises(TimestampError, match="another digest than asked"),
    ):
        request_timestamp(authority.url, DATA)


def test_a_reply_without_our_nonce_is_refused(tmp_path: Path) -> None:
    with (
        TimestampAuthority(tmp_path / "tsa", alter_query=changed_query(nonce=42)) as authority,
        pytest.raises(TimestampError, match="nonce"),
    ):
        request_timestamp(authority.url, DATA)


def test_a_reply_without_the_certificate_is_refused(tmp_path: Path) -> None:
    with (
        TimestampAuthority(
            tmp_path / "tsa", alter_query=changed_query(cert_req=False)
        ) as authority,
        pytest.raises(TimestampError, match="left out its certificate"),
    ):
        request_timestamp(authority.url, DATA)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/tsa", "127.0.0.1/tsa"])
def test_only_http_urls_are_asked(url: str) -> None:
    with pytest.raises(TimestampError, match="must be http"):
        request_timestamp(url, DATA)


def test_a_token_that_is_not_one_is_an_error() -> None:
    with pytest.raises(TimestampError, match="unreadable timestamp token"):
        token_time(b"\x30\x03\x02\x01\x01")
