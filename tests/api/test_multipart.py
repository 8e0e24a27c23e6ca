"""The multipart/form-data parts of a publication, found in the body read whole."""

from __future__ import annotations

import pytest

from ebox.api.multipart import MalformedBody, parts

BOUNDARY = b"b0undary"


def _body(*items: tuple[bytes, bytes], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    """A multipart body of (header block, content) parts, as HTTP clients write it."""
    body = preamble
    for headers, content in items:
        body += b"--" + BOUNDARY + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n" + epilogue


def _named(name: str, file_name: str = "") -> bytes:
    extra = f'; filename="{file_name}"' if file_name else ""
    return f'Content-Disposition: form-data; name="{name}"{extra}\r\nContent-Type: x/y'.encode()


def test_each_part_is_found_by_name_in_order_with_its_bytes_untouched() -> None:
    # Content that looks like a delimiter without its CRLF, and line breaks of every kind.
    tricky = b"%PDF-1.7\r\n--b0undar\n--b0undaryX\r\n\r\n\r\r\n" + bytes(range(256)) * 400
    body = _body(
        (_named("message", "m.json"), b'{"a": 1}'),
        (_named("documents", "a.pdf"), tricky),
        (_named("documents", "b.pdf"), b""),
        preamble=b"ignored preamble\r\n",
        epilogue=b"ignored epilogue",
    )
    assert parts(body, BOUNDARY) == {"message": [b'{"a": 1}'], "documents": [tricky, b""]}


def test_a_part_without_a_name_is_named_empty() -> None:
    body = _body((b"Content-Type: text/plain", b"x"), (b"CONTENT-DISPOSITION: form-data", b"y"))
    assert parts(body, BOUNDARY) == {"": [b"x", b"y"]}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no boundary at all",
        _body((_named("message"), b"{}"))[:-20],  # cut before the closing delimiter
        b"--b0undary\r\n" + _named("message") + b"\r\n{}\r\n--b0undary--",  # no empty line
        b"--b0undary junk\r\n" + _named("message") + b"\r\n\r\n{}\r\n--b0undary--",
        b"--b0undary\r\nno colon here\r\n\r\n{}\r\n--b0undary--",
        b"--b0undary\r\nContent-Disposition: attachment\r\n\r\n{}\r\n--b0undary--",
        b"--b0undary\n" + _named("message") + b"\n\n{}\n--b0undary--",  # LF alone
    ],
)
def test_a_malformed_body_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parts(body, BOUNDARY)
