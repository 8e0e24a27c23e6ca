"""A body sent without a Content-Length (chunked) is read whole within its endpoint's limit, or
refused: nothing ever parses a body cut at the limit. Over real HTTP, on a live server."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

import pytest
from flask import Flask

from ebox import create_app
from ebox.config import MAX_FORM_BYTES
from tests.conftest import make_settings
from tests.live_server import LiveServer, live_server


@pytest.fixture
def server(app: Flask, instance_path, database_url) -> Iterator[LiveServer]:
    with live_server(create_app(make_settings(instance_path, database_url))) as served:
        yield served


def _connection(server: LiveServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)


def _visitor(server: LiveServer) -> tuple[str, str]:
    """A visitor's session cookie and the CSRF token of the page it was given with."""
    connection = _connection(server)
    connection.request("GET", "/auth/login")
    answer = connection.getresponse()
    page = answer.read().decode()
    cookie = answer.getheader("Set-Cookie", "").split(";")[0]
    connection.close()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None and cookie
    return cookie, token.group(1)


def _switch_language_chunked(server: LiveServer, padding: int) -> int:
    """The language switcher's form, posted chunked, with a field padding it to a size."""
    cookie, token = _visitor(server)
    form = f"csrf_token={token}&language=en&next=/auth/login&padding=".encode()
    body = form + b"A" * (padding - len(form))
    connection = _connection(server)
    pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    connection.request(
        "POST", "/profile/language", body=pieces, headers=headers, encode_chunked=True
    )
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer.status


def test_a_chunked_form_within_the_limit_is_read_whole(server: LiveServer) -> None:
    # The token sits at the start: a body cut at the limit would pass just as well, so the
    # form ends with a field that only a whole body has.
    assert _switch_language_chunked(server, MAX_FORM_BYTES - 10) == 303


def test_a_chunked_form_over_the_limit_is_refused_with_413(server: LiveServer) -> None:
    assert _switch_language_chunked(server, MAX_FORM_BYTES + 1) == 413


def test_a_chunked_body_that_breaks_off_is_answered_400_and_never_parsed(
    server: LiveServer,
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/auth/saml/acs")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.putheader("Content-Type", "application/x-www-form-urlencoded")
    connection.endheaders()
    connection.send(b"10\r\nSAMLResponse=AAA\r\n" + b"ffff\r\nAAAA")  # a chunk cut short
    connection.sock.shutdown(1)  # the client stops sending
    answer = connection.getresponse()
    assert answer.status == 400
    assert "not received whole" in answer.read().decode()
    connection.close()
