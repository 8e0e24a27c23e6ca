"""The request body reaches the parser whole or not at all: chunked requests (which announce no
length) are counted as they arrive and refused past the limit, and a body cut short, chunked or
shorter than its Content-Length, is never parsed. Real HTTP over a socket to the live server on
loopback; the padding after each envelope makes any cut at the limit well-formed, so a body
parsed cut short would show as an answer."""

from __future__ import annotations

import http.client
import io
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from lxml import etree

from ebox.soap.faults import SoapFault
from ebox.soap.views import _read_body
from ebox.soap.xml import SOAP11_NS
from tests.live_server import LiveServer

EBOX_NS = "urn:ebox:ns:EboxMessage:v1"
PATH = "/soap/EboxMessage/v1"
LIMIT = 2000
# An unsigned healthCheck: answered OK whenever it is parsed, so a parse shows in the answer.
PING = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<e:healthCheckRequest xmlns:e="urn:ebox:ns:EboxMessage:v1"><e:Level>PING</e:Level>'
    b"</e:healthCheckRequest></soap:Body></soap:Envelope>"
)


@dataclass
class Answer:
    status: int
    body: bytes

    @property
    def fault(self) -> tuple[str, str]:
        """(business code, message) of the SOAP Fault answered."""
        assert self.status == 500, self.body
        detail = etree.fromstring(self.body).find(
            f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault/detail/{{{EBOX_NS}}}EboxFault"
        )
        assert detail is not None, self.body
        return str(detail.findtext(f"{{{EBOX_NS}}}Code")), str(
            detail.findtext(f"{{{EBOX_NS}}}Message")
        )

    @property
    def is_ping_ok(self) -> bool:
        return self.status == 200 and b">OK<" in self.body


@pytest.fixture
def small_limit(soap_server: LiveServer) -> Iterator[int]:
    settings = soap_server.app.config["EBOX"]
    previous = settings.soap_max_request_bytes
    settings.soap_max_request_bytes = LIMIT
    try:
        yield LIMIT
    finally:
        settings.soap_max_request_bytes = previous


def padded(size: int) -> bytes:
    """The ping followed by spaces up to size bytes: any prefix that keeps the envelope whole
    is well-formed too, so a body cut at the limit would be parsed and answered OK."""
    assert size >= len(PING)
    return PING + b" " * (size - len(PING))


def send(server: LiveServer, head: bytes, body: bytes) -> Answer:
    """Write head and body on a fresh connection, close our side, and read the answer."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(head + body)
        connection.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return Answer(response.status, response.read())


def request_head(server: LiveServer, **headers: str) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", f"Host: {urlsplit(server.url).netloc}"]
    lines += ["Content-Type: text/xml; charset=utf-8", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(data: bytes, size: int = 500) -> bytes:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)


def post_chunked(server: LiveServer, body: bytes, *, finished: bool = True) -> Answer:
    ending = b"0\r\n\r\n" if finished else b""
    return send(server, request_head(server, Transfer_Encoding="chunked"), body + ending)


def test_a_chunked_request_up_to_the_limit_is_read_whole_and_answered(
    soap_server: LiveServer, small_limit: int
) -> None:
    assert post_chunked(soap_server, chunked(padded(small_limit))).is_ping_ok
    assert post_chunked(soap_server, chunked(padded(small_limit - 1))).is_ping_ok


@pytest.mark.parametrize("over", [1, 499, 500, 10 * LIMIT])
def test_a_chunked_request_over_the_limit_is_refused_as_too_large_not_parsed_cut(
    soap_server: LiveServer, small_limit: int, over: int
) -> None:
    answer = post_chunked(soap_server, chunked(padded(small_limit + over)))
    code, message = answer.fault
    assert code == "REQUEST_TOO_LARGE"
    assert str(small_limit) in message


def test_a_chunked_request_through_http_client_is_counted_too(
    soap_server: LiveServer, small_limit: int
) -> None:
    address = urlsplit(soap_server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=30)
    try:
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        pieces = iter([padded(small_limit), b" "])  # no length known: sent chunked
        connection.request("POST", PATH, body=pieces, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        answer = Answer(response.status, response.read())
    finally:
        connection.close()
    assert answer.fault[0] == "REQUEST_TOO_LARGE"


@pytest.mark.parametrize("cut", ["after a whole chunk", "inside a chunk"])
def test_a_chunked_body_cut_short_by_the_client_is_never_parsed(
    soap_server: LiveServer, caplog: pytest.LogCaptureFixture, cut: str
) -> None:
    if cut == "after a whole chunk":
        body = chunked(PING, size=len(PING))  # the whole envelope, but no final chunk
    else:
        body = b"%x\r\n%s" % (len(PING) + 100, PING)  # announces 100 bytes never sent
    with caplog.at_level(logging.ERROR, logger="ebox"):
        answer = post_chunked(soap_server, body, finished=False)

    # Refused as a bad request before the SOAP layer sees it: there is no body to answer.
    assert answer.status == 400 and not answer.is_ping_ok, answer
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_body_shorter_than_its_content_length_is_never_parsed(
    soap_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    head = request_head(soap_server, Content_Length=str(len(PING) + 100))
    with caplog.at_level(logging.INFO, logger="ebox"):
        code, message = send(soap_server, head, PING).fault
    assert code == "XML_MALFORMED"
    assert "before its body was complete" in message
    # The client went away: one line at INFO, nothing an operator has to act on (beside the
    # line every request ends with).
    [record] = [r for r in caplog.records if r.name.startswith("ebox") and r.name != "ebox.request"]
    assert record.levelno == logging.INFO and record.exc_info is None
    assert f"broke off after {len(PING)} of {len(PING) + 100} bytes" in record.getMessage()


class _ResetAfter(io.RawIOBase):
    """Gives some bytes, then fails as a socket whose client reset the connection."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if not self.data:
            raise ConnectionResetError(104, "Connection reset by peer")
        size = min(len(buffer), len(self.data))
        buffer[:size], self.data = self.data[:size], self.data[size:]
        return size


def test_a_connection_reset_mid_body_is_a_fault_and_one_info_line(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    stream = _ResetAfter(PING)
    environ = {"CONTENT_LENGTH": str(len(PING) + 100), "wsgi.input": stream}
    with (
        caplog.at_level(logging.INFO, logger="ebox"),
        app.test_request_context(PATH, method="POST", environ_overrides=environ),
        pytest.raises(SoapFault) as refused,
    ):
        _read_body(LIMIT)
    assert refused.value.code == "XML_MALFORMED"
    [record] = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert f"broke off after {len(PING)} of {len(PING) + 100} bytes" in record.getMessage()


def test_a_body_of_exactly_its_content_length_is_answered(soap_server: LiveServer) -> None:
    head = request_head(soap_server, Content_Length=str(len(PING)))
    assert send(soap_server, head, PING).is_ping_ok


def test_a_body_ended_quietly_before_its_content_length_is_never_parsed(app: Flask) -> None:
    """Servers that end the input themselves (gunicorn: wsgi.input_terminated) hand over a short
    body without an error when the client goes away: the count tells."""
    terminated = {"wsgi.input_terminated": True}

    def read(announced: int) -> bytes:
        environ = {**terminated, "CONTENT_LENGTH": str(announced)}
        stream = io.BytesIO(PING)
        with app.test_request_context(
            PATH, method="POST", input_stream=stream, environ_overrides=environ
        ):
            return _read_body(LIMIT)

    assert read(len(PING)) == PING
    with pytest.raises(SoapFault) as refused:
        read(len(PING) + 100)
    assert refused.value.code == "XML_MALFORMED"
