"""Hardened parsing of the SOAP 1.1 envelopes institutions send.

Whatever arrives at the endpoint is hostile until proven otherwise, so the dangerous parts of XML
are refused before libxml2 sees the bytes, and the parser is configured so that it could not act
on them anyway:

- the size is checked first, on the raw bytes;
- only UTF-8 is accepted (a declared or detectable other encoding, or a NUL byte, is refused), so
  that the byte-level checks below cannot be sidestepped by an encoding libxml2 would decode;
- any ``<!DOCTYPE`` is refused before parsing, which is what makes entity expansion ("billion
  laughs") and external entities (XXE, file or network) cost nothing: no DTD is ever read;
- references to entities other than the five predefined ones are refused;
- the parser never resolves entities, never loads a DTD and never touches the network;
- after parsing: no DTD may have slipped through, no processing instruction, no element nested
  deeper than MAX_DEPTH.

libxml2's "huge tree" limits are lifted on purpose: without them it refuses any text node longer
than 10,000,000 characters, and a 10 MB PDF is about 14 MB of base64. The limits they would
enforce are bounded here instead: the size before parsing, the depth after, and no DTD at all.
"""

from __future__ import annotations

import re

from lxml import etree

from ebox.soap.faults import REQUEST_TOO_LARGE, XML_FORBIDDEN, XML_MALFORMED, SoapFault

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_DEPTH = 100

_ENVELOPE = f"{{{SOAP11_NS}}}Envelope"
_HEADER = f"{{{SOAP11_NS}}}Header"
_BODY = f"{{{SOAP11_NS}}}Body"

_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_XML_DECLARATION = re.compile(rb"<\?xml\s[^>]*?\?>")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# An ampersand that does not start a character reference or one of the predefined entities.
_ENTITY_REFERENCE = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#[0-9]+;|#x[0-9A-Fa-f]+;)")
# An element at depth MAX_DEPTH + 1 (the root is at depth 1).
_TOO_DEEP = etree.XPath("/*" + "/*" * MAX_DEPTH)


def hardened_parser() -> etree.XMLParser:
    """A new parser for each document, so that concurrent requests share no parser state."""
    return etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=True,
        remove_pis=False,
        collect_ids=False,
    )


def parse_envelope(raw: bytes, *, max_bytes: int) -> etree._Element:
    """Parse a SOAP 1.1 envelope from untrusted bytes; return its root (soap:Envelope).

    Raises SoapFault: REQUEST_TOO_LARGE (more than max_bytes, checked before anything else),
    XML_FORBIDDEN (a DTD, an entity, a processing instruction, an encoding other than UTF-8,
    nesting deeper than MAX_DEPTH), XML_MALFORMED (not well-formed XML, or not an Envelope of
    at most one Header followed by exactly one Body).
    """
    if len(raw) > max_bytes:
        raise SoapFault(
            REQUEST_TOO_LARGE, f"The request is larger than the {max_bytes} bytes accepted."
        )
    _refuse_forbidden_bytes(raw)
    root = _parse(raw)
    _refuse_forbidden_nodes(root)
    _check_envelope_shape(root)
    return root


def _refuse_forbidden_bytes(raw: bytes) -> None:
    if raw.startswith(_OTHER_BOMS) or b"\x00" in raw:
        raise SoapFault(XML_FORBIDDEN, "The request must be encoded in UTF-8.")
    text = raw.removeprefix(_UTF8_BOM)
    declaration = _XML_DECLARATION.match(text)
    if declaration:
        encoding = _DECLARED_ENCODING.search(declaration.group())
        if encoding and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
            raise SoapFault(XML_FORBIDDEN, "The request must be encoded in UTF-8.")
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise SoapFault(XML_FORBIDDEN, "Document type declarations (DTD) are not accepted.")
    # The regular expression only where it can match: most requests hold no "&" at all.
    if b"&" in text and _ENTITY_REFERENCE.search(text):
        raise SoapFault(
            XML_FORBIDDEN,
            "Entity references are not accepted, except &amp; &lt; &gt; &quot; &apos; "
            "and character references.",
        )


def _parse(raw: bytes) -> etree._Element:
    try:
        return etree.fromstring(raw, hardened_parser())
    except etree.XMLSyntaxError as error:
        # error.msg is this document's error (error_log also holds earlier ones of the thread).
        if error.msg.startswith("Excessive depth"):
            raise _too_deep() from None
        raise SoapFault(XML_MALFORMED, "The request is not well-formed XML.") from None


def _too_deep() -> SoapFault:
    return SoapFault(XML_FORBIDDEN, f"The request nests elements deeper than {MAX_DEPTH} levels.")


def _refuse_forbidden_nodes(root: etree._Element) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SoapFault(XML_FORBIDDEN, "Document type declarations (DTD) are not accepted.")
    if _has_processing_instruction(root):
        raise SoapFault(XML_FORBIDDEN, "Processing instructions are not accepted.")
    if any(True for _ in root.iter(etree.Entity)):
        raise SoapFault(XML_FORBIDDEN, "Entity references are not accepted.")
    if _TOO_DEEP(root):
        raise _too_deep()


def _has_processing_instruction(root: etree._Element) -> bool:
    siblings = [*root.itersiblings(preceding=True), *root.itersiblings()]
    if any(isinstance(node, etree._ProcessingInstruction) for node in siblings):
        return True
    return any(True for _ in root.iter(etree.ProcessingInstruction))


def _check_envelope_shape(root: etree._Element) -> None:
    if root.tag != _ENVELOPE:
        raise SoapFault(XML_MALFORMED, "The request is not a SOAP 1.1 Envelope.")
    if (root.text or "").strip():
        raise SoapFault(XML_MALFORMED, "The SOAP Envelope must not contain text.")
    children = []
    for child in root:
        if (child.tail or "").strip():
            raise SoapFault(XML_MALFORMED, "The SOAP Envelope must not contain text.")
        if isinstance(child.tag, str):
            children.append(child.tag)
    if children not in ([_BODY], [_HEADER, _BODY]):
        raise SoapFault(
            XML_MALFORMED,
            "The SOAP Envelope must contain at most one Header followed by exactly one Body.",
        )
