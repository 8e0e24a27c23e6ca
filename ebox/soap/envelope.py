"""SOAP 1.1 responses and Faults of eBox's services, and the elements they are made of.

A Fault is answered with HTTP 500 (SOAP 1.1 over HTTP requires it), faultcode soap:Client when
the request must change and soap:Server when it may succeed later, and a detail holding an
EboxFault element with the stable business code and the message.
"""

from __future__ import annotations

from flask import Response
from lxml import etree

from ebox.soap.faults import SoapFault
from ebox.soap.xml import SOAP11_NS

EBOX_NS = "urn:ebox:ns:EboxMessage:v1"
CONTENT_TYPE = "text/xml; charset=utf-8"

_NSMAP = {"soap": SOAP11_NS, "ebox": EBOX_NS}


def ebox(name: str) -> str:
    """The Clark name of an element of our namespace."""
    return f"{{{EBOX_NS}}}{name}"


def element(name: str, text: object = None, *children: etree._Element) -> etree._Element:
    """One element of the EboxMessage namespace, with text (booleans as xs:boolean) and children."""
    return element_in(EBOX_NS, "ebox", name, text, *children)


def element_in(
    namespace: str, prefix: str, name: str, text: object = None, *children: etree._Element
) -> etree._Element:
    """One element of a service's namespace, with text (booleans as xs:boolean) and children."""
    node = etree.Element(f"{{{namespace}}}{name}", nsmap={prefix: namespace})
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
