"""SOAP 1.1 responses and Faults of the EboxMessage service, and the contract files they follow.

A Fault is answered with HTTP 500 (SOAP 1.1 over HTTP requires it), faultcode soap:Client when
the request must change and soap:Server when it may succeed later, and a detail holding an
EboxFault element with the stable business code and the message.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from flask import Response
from lxml import etree

from ebox.soap.faults import SoapFault
from ebox.soap.xml import SOAP11_NS

EBOX_NS = "urn:ebox:ns:EboxMessage:v1"
CONTRACT_DIR = Path(__file__).resolve().parent / "contract"
WSDL_FILE = "EboxMessage-v1.wsdl"
XSD_FILE = "EboxMessage-v1.xsd"
CONTENT_TYPE = "text/xml; charset=utf-8"

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XS_NS = "http://www.w3.org/2001/XMLSchema"
_NSMAP = {"soap": SOAP11_NS, "ebox": EBOX_NS}
_schemas = threading.local()


def ebox(name: str) -> str:
    """The Clark name of an element of our namespace."""
    return f"{{{EBOX_NS}}}{name}"


def element(name: str, text: object = None, *children: etree._Element) -> etree._Element:
    """One element of our namespace, with text (booleans as xs:boolean) and children."""
    node = etree.Element(ebox(name), nsmap={"ebox": EBOX_NS})
    if isinstance(text, bool):
        node.text = "true" if text else "false"
    elif text is not None:
        node.text = str(text)
    node.extend(children)
    return node


def response(payload: etree._Element) -> Response:
    return _envelope_response(payload, status=200)


def fault_response(fault: SoapFault) -> Response:
    node = etree.Element(etree.QName(SOAP11_NS, "Fault"), nsmap=_NSMAP)
    etree.SubElement(node, "faultcode").text = (
        "soap:Client" if fault.is_client_error else "soap:Server"
    )
    etree.SubElement(node, "faultstring").text = fault.message
    detail = etree.SubElement(node, "detail")
    detail.append(
        element("EboxFault", None, element("Code", fault.code), element("Message", fault.message))
    )
    return _envelope_response(node, status=500)


def _envelope_response(payload: etree._Element, *, status: int) -> Response:
    envelope = etree.Element(etree.QName(SOAP11_NS, "Envelope"), nsmap=_NSMAP)
    etree.SubElement(envelope, etree.QName(SOAP11_NS, "Body")).append(payload)
    body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return Response(body, status=status, content_type=CONTENT_TYPE)


def schema() -> etree.XMLSchema:
    """The XSD of the messages, one instance per thread (a validator keeps its error log)."""
    loaded: etree.XMLSchema | None = getattr(_schemas, "schema", None)
    if loaded is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        loaded = etree.XMLSchema(etree.parse(str(CONTRACT_DIR / XSD_FILE), parser))
        _schemas.schema = loaded
    return loaded


@cache
def _contract_tree(file_name: str) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.parse(str(CONTRACT_DIR / file_name), parser)


def served_wsdl(endpoint_url: str) -> bytes:
    """The WSDL as served: its address and its schema's location are the public ones."""
    tree = etree.ElementTree(_copy(_contract_tree(WSDL_FILE).getroot()))
    address = tree.find(f".//{{{_WSDL_NS}}}port/{{{_WSDL_SOAP_NS}}}address")
    assert address is not None  # the contract file has one
    address.set("location", endpoint_url)
    for schema_import in tree.iterfind(f".//{{{_XS_NS}}}import"):
        schema_import.set("schemaLocation", f"{endpoint_url}?xsd={XSD_FILE}")
    return etree.tostring(tree, xml_declaration=True, encoding="utf-8")


def served_xsd(file_name: str) -> bytes | None:
    """A schema of the contract by its file name, or None for any other name."""
    if file_name != XSD_FILE:
        return None
    return etree.tostring(_contract_tree(XSD_FILE), xml_declaration=True, encoding="utf-8")


def _copy(root: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(root))
