"""Evidence with other times, signed again with a genuine seal: what a platform that did not check
its times would have sealed, for the verifier to catch."""

from __future__ import annotations

import base64
from datetime import datetime

import xmlsec
from lxml import etree
from xmlsec import constants

from ebox.evidence.seal import Seal
from ebox.evidence.timestamp import request_timestamp
from ebox.evidence.xml import DS, NAMESPACES, NS


def reseal(
    evidence_xml: bytes,
    seal: Seal,
    *,
    event_time: datetime,
    sealing_time: datetime | None,
    tsa_url: str | None = None,
) -> bytes:
    """The evidence stating event_time and sealing_time (None: no SealingTime at all), its
    signature made again with seal and, with tsa_url, timestamped again by that authority."""
    root = etree.fromstring(evidence_xml)
    _element(root, "EventTime").text = _utc(event_time)
    stated = _element(root, "SealingTime")
    if sealing_time is None:
        root.remove(stated)
    else:
        stated.text = _utc(sealing_time)
    signature = root.find("ds:Signature", NAMESPACES)
    assert signature is not None
    for old in signature.findall("ds:Object", NAMESPACES) + signature.findall(
        "ds:KeyInfo/ds:X509Data/*", NAMESPACES
    ):
        old.getparent().remove(old)
    _sign(signature, seal)
    if tsa_url is not None:
        value = base64.b64decode(signature.findtext("ds:SignatureValue", "", NAMESPACES))
        holder = etree.SubElement(signature, f"{{{DS}}}Object")
        token = request_timestamp(tsa_url, value)
        etree.SubElement(holder, f"{{{NS}}}SignatureTimeStamp").text = base64.b64encode(
            token
        ).decode()
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _sign(signature: etree._Element, seal: Seal) -> None:
    key = xmlsec.Key.from_memory(seal.key_pem, constants.KeyDataFormatPem)
    key.load_cert_from_memory(seal.cert_pem, constants.KeyDataFormatCertPem)
    context = xmlsec.SignatureContext()
    context.key = key
    context.sign(signature)


def _element(root: etree._Element, name: str) -> etree._Element:
    element = root.find(f"ev:{name}", NAMESPACES)
    assert element is not None, name
    return element


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S.%fZ}"
