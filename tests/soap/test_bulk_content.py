"""The document's base64 is checked apart from the schema when it is plain base64: only what
libxml2 accepts is taken that way, it decodes alike, and anything else is judged as before."""

from __future__ import annotations

import base64
import binascii
import random

import pytest
from flask import Flask
from lxml import etree

from ebox.extensions import db
from ebox.senders.models import Sender
from ebox.soap.binary import is_plain_base64, plain_base64
from tests.factories import create_message_type
from tests.live_server import LiveServer
from tests.soap.test_ebox_message_requests import (
    document_count,
    fault_of,
    post,
    publication,
    signed,
)
from tests.soap.wss_helpers import Identity, register

SCHEMA = etree.XMLSchema(
    etree.fromstring(
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        b'<xs:element name="c" type="xs:base64Binary"/></xs:schema>'
    )
)
PLAIN = ["", "QUJD", "QUJD\nQUJD", "QUJD\r\nQUJD\r\n", " QU JD\t", "QQ==", "QUI=", "QU I="]
NOT_PLAIN = ["QR==", "QUJ=", "QU!JD", "QUJD=", "=QUJ", "QUJDQQ", "QUJD====", "QUJ\u00e9", "QQ=A"]


def libxml2_accepts(text: str) -> bool:
    element = etree.Element("c")
    element.text = text
    return bool(SCHEMA.validate(element))


def python_decodes(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def some_strings(count: int) -> list[str]:
    chooser = random.Random(20261202)
    letters = "ABCDQRwxyz019+/= \n\r\t!"
    return ["".join(chooser.choices(letters, k=chooser.randrange(0, 13))) for _ in range(count)]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_base64_is_told_apart(text: str) -> None:
    assert is_plain_base64(text)
    assert plain_base64(text) == python_decodes(text)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_anything_else_goes_the_long_way(text: str) -> None:
    assert not is_plain_base64(text)
    assert plain_base64(text) is None


def test_whatever_counts_as_plain_libxml2_accepts_and_python_decodes_alike() -> None:
    plain = 0
    for text in some_strings(20000):
        if is_plain_base64(text):
            plain += 1
            assert libxml2_accepts(text), text
            assert plain_base64(text) == python_decodes(text), text
    assert plain > 500  # the strings above hold plenty of both kinds


@pytest.fixture
def sender(app: Flask, identity: Identity) -> Sender:
    record = register(identity)
    create_message_type(record.sender, code="TAX")
    db.session.commit()
    return record.sender


def _with_content(text: str) -> etree._Element:
    request = publication()
    content = request.find(".//{urn:ebox:ns:EboxMessage:v1}Content")
    assert content is not None
    content.text = text
    return request


def test_a_document_folded_in_lines_is_published(
    soap_server: LiveServer, identity: Identity, sender: Sender
) -> None:
    request = publication()
    content = request.find(".//{urn:ebox:ns:EboxMessage:v1}Content")
    assert content is not None and content.text
    content.text = "\r\n".join(content.text[i : i + 76] for i in range(0, len(content.text), 76))

    response = post(soap_server, signed(request, identity))

    assert response.status_code == 200, response.text
    assert document_count() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # libxml2 lets stray characters through; the decoder that follows does not.
        ("QU!JD", "A base64Binary value is not valid."),
        # Padding whose unused bits are set: libxml2 refuses it, in its own words.
        ("QR==", "is not a valid value of the atomic type 'xs:base64Binary'"),
    ],
)
def test_a_document_off_plain_base64_is_refused_as_before(
    soap_server: LiveServer, identity: Identity, sender: Sender, text: str, message: str
) -> None:
    response = post(soap_server, signed(_with_content(text), identity))

    _faultcode, code, answered = fault_of(response)
    assert code == "SCHEMA_INVALID"
    assert message in answered
    assert document_count() == 0
