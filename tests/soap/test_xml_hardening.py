"""parse_envelope: hostile XML is refused before it costs anything, and the parser could not act
on it anyway. No database needed."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from ebox.soap import faults
from ebox.soap.faults import SoapFault
from ebox.soap.xml import MAX_DEPTH, SOAP11_NS, hardened_parser, parse_envelope

MAX_BYTES = 1_000_000
ENVELOPE = (
    '<soap:Envelope xmlns:soap="' + SOAP11_NS + '"><soap:Header/>'
    '<soap:Body><ping xmlns="urn:example:ebox-test">{payload}</ping></soap:Body></soap:Envelope>'
)


def envelope(payload: str = "Hello", prolog: str = "") -> bytes:
    return (prolog + ENVELOPE.format(payload=payload)).encode()


def refusal(raw: bytes, max_bytes: int = MAX_BYTES) -> SoapFault:
    with pytest.raises(SoapFault) as caught:
        parse_envelope(raw, max_bytes=max_bytes)
    return caught.value


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that notices any connection, to prove nothing is fetched."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def parsed_or_refused(raw: bytes) -> str:
    """What the bare hardened parser makes of raw, past the byte-level checks: the document it
    built, or the error it stopped with."""
    try:
        return etree.tostring(etree.fromstring(raw, hardened_parser()), encoding="unicode")
    except etree.XMLSyntaxError as error:
        return str(error)


def test_a_plain_envelope_is_parsed() -> None:
    root = parse_envelope(envelope("Hello &amp; caf&#233; &#xE9;"), max_bytes=MAX_BYTES)
    assert root.tag == f"{{{SOAP11_NS}}}Envelope"
    assert root.findtext(".//{urn:example:ebox-test}ping") == "Hello & café é"


def test_a_declaration_a_bom_comments_and_no_header_are_fine() -> None:
    raw = b"\xef\xbb\xbf" + envelope(prolog='<?xml version="1.0" encoding="UTF-8"?>\n<!-- hi -->')
    assert parse_envelope(raw, max_bytes=MAX_BYTES) is not None
    no_header = envelope().replace(b"<soap:Header/>", b"")
    assert len(parse_envelope(no_header, max_bytes=MAX_BYTES)) == 1


def test_the_size_is_checked_before_parsing() -> None:
    raw = envelope("x" * 1000)
    assert parse_envelope(raw, max_bytes=len(raw)) is not None
    assert refusal(raw, max_bytes=len(raw) - 1).code == faults.REQUEST_TOO_LARGE
    # Not even XML: still "too large", so nothing looked at the content.
    assert refusal(b"<" * 2000, max_bytes=1000).code == faults.REQUEST_TOO_LARGE


def test_a_ten_megabyte_document_in_base64_is_accepted() -> None:
    content = base64.b64encode(os.urandom(10 * 1024 * 1024)).decode()
    raw = envelope(f"<Content>{content}</Content>")
    root = parse_envelope(raw, max_bytes=16 * 1024 * 1024)
    assert len(root.findtext(".//{urn:example:ebox-test}Content") or "") == len(content)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE soap:Envelope [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


def test_billion_laughs_is_refused_in_the_time_of_a_normal_request() -> None:
    raw = envelope("&lol9;", prolog=BILLION_LAUGHS)
    normal = envelope("x" * len(raw))

    started = time.perf_counter()
    parse_envelope(normal, max_bytes=MAX_BYTES)
    normal_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fault = refusal(raw)
    attack_seconds = time.perf_counter() - started

    assert fault.code == faults.XML_FORBIDDEN
    assert "DTD" in fault.message
    assert attack_seconds < normal_seconds + 0.01


def test_the_parser_itself_never_expands_entities() -> None:
    """Second line of defence: even past the byte checks, nothing would be expanded."""
    raw = envelope("&lol9;", prolog=BILLION_LAUGHS)
    started = time.perf_counter()
    assert "lollol" not in parsed_or_refused(raw)
    assert time.perf_counter() - started < 0.5


def test_an_external_file_entity_is_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    prolog = f'<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    raw = envelope("&xxe;", prolog=prolog)

    fault = refusal(raw)

    assert fault.code == faults.XML_FORBIDDEN
    assert "TOP-SECRET" not in fault.message
    assert str(tmp_path) not in fault.message
    assert "TOP-SECRET" not in parsed_or_refused(raw)


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/e">]>',
        '<!DOCTYPE soap:Envelope SYSTEM "http://127.0.0.1:{port}/x.dtd">',
        '<!DOCTYPE soap:Envelope [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p"> %p;]>',
    ],
)
def test_a_network_entity_or_dtd_is_refused_and_never_fetched(
    listener: socket.socket, prolog: str
) -> None:
    port = listener.getsockname()[1]
    payload = "&xxe;" if "xxe" in prolog else "Hello"
    raw = envelope(payload, prolog=prolog.format(port=port))

    assert refusal(raw).code == faults.XML_FORBIDDEN
    parsed_or_refused(raw)  # the parser alone does not fetch either

    assert connections(listener) == 0


def test_the_listener_would_notice_a_fetch(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert connections(listener) == 1


def test_a_doctype_without_entities_is_refused() -> None:
    assert refusal(envelope(prolog="<!DOCTYPE soap:Envelope>")).code == faults.XML_FORBIDDEN


@pytest.mark.parametrize(
    "raw",
    [
        "\ufeff" + ENVELOPE.format(payload="Hi"),
        '<?xml version="1.0" encoding="UTF-16"?>' + ENVELOPE.format(payload="Hi"),
    ],
)
def test_utf16_is_refused_with_or_without_a_bom(raw: str) -> None:
    with_bom = raw.encode("utf-16")
    without_bom = raw.encode("utf-16-le")
    assert refusal(with_bom).code == faults.XML_FORBIDDEN
    assert refusal(without_bom).code == faults.XML_FORBIDDEN


def test_a_doctype_hidden_in_utf16_is_refused() -> None:
    raw = ('<!DOCTYPE soap:Envelope [<!ENTITY x "y">]>' + ENVELOPE.format(payload="&x;")).encode(
        "utf-16"
    )
    assert refusal(raw).code == faults.XML_FORBIDDEN


def test_a_declared_encoding_other_than_utf8_is_refused() -> None:
    raw = envelope(prolog='<?xml version="1.0" encoding="ISO-8859-1"?>')
    fault = refusal(raw)
    assert fault.code == faults.XML_FORBIDDEN
    assert "UTF-8" in fault.message


def test_an_undeclared_entity_reference_is_refused() -> None:
    assert refusal(envelope("&nbsp;")).code == faults.XML_FORBIDDEN


@pytest.mark.parametrize(
    "raw",
    [
        envelope("<?evil stuff?>"),
        envelope(prolog='<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?>'),
        envelope() + b"<?trailing?>",
    ],
)
def test_processing_instructions_are_refused(raw: bytes) -> None:
    fault = refusal(raw)
    assert fault.code == faults.XML_FORBIDDEN
    assert "Processing instructions" in fault.message


def nested(depth: int) -> bytes:
    """An envelope whose deepest element is at depth (the Envelope is at 1, the Body at 2)."""
    inner = depth - 2
    return envelope("<a>" * (inner - 1) + "</a>" * (inner - 1))


def test_nesting_up_to_the_limit_is_fine_and_one_more_is_refused() -> None:
    root = parse_envelope(nested(MAX_DEPTH), max_bytes=MAX_BYTES)
    assert max(len(list(e.iterancestors())) for e in root.iter()) + 1 == MAX_DEPTH

    fault = refusal(nested(MAX_DEPTH + 1))
    assert fault.code == faults.XML_FORBIDDEN
    assert "deeper" in fault.message


def test_nesting_beyond_what_libxml2_allows_is_refused_as_too_deep() -> None:
    fault = refusal(nested(5000))
    assert fault.code == faults.XML_FORBIDDEN
    assert "deeper" in fault.message


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not xml",
        envelope().replace(b"</soap:Envelope>", b""),
        b'<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>',
        b"<ping>Hello</ping>",
    ],
)
def test_what_is_not_a_well_formed_soap11_envelope_is_malformed(raw: bytes) -> None:
    assert refusal(raw).code == faults.XML_MALFORMED


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<soap:Header/>", b"<soap:Header/><soap:Header/>"),
        (b"</soap:Body>", b"</soap:Body><soap:Body/>"),
        (b"</soap:Body>", b"</soap:Body><soap:Header/>"),
        (b"</soap:Body>", b"</soap:Body><extra/>"),
        (b"<soap:Header/>", b"<extra/>"),
        (b"<soap:Header/>", b"some text"),
    ],
)
def test_an_envelope_must_hold_an_optional_header_then_one_body(old: bytes, new: bytes) -> None:
    fault = refusal(envelope().replace(old, new))
    assert fault.code == faults.XML_MALFORMED
    assert fault.message.startswith("The SOAP Envelope")


def test_an_envelope_without_a_body_is_malformed() -> None:
    raw = envelope().replace(b"<soap:Body>", b"").replace(b"</soap:Body>", b"")
    assert refusal(raw).code == faults.XML_MALFORMED


def test_malformed_xml_messages_do_not_echo_parser_details() -> None:
    fault = refusal(b"<soap:Envelope xmlns:soap='" + SOAP11_NS.encode() + b"'><oops>")
    assert fault.message == "The request is not well-formed XML."
