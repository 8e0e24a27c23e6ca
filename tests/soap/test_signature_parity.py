"""The SignatureValue is verified over SignedInfo without xmlsec; xmlsec, which did that step
before, is the judge here: for every shape of SignedInfo, SignatureValue and DigestValue below,
authenticate() answers exactly what the same steps answered with xmlsec's verify() at the end."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import datetime

import pytest
import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from flask import Flask
from lxml import etree
from xmlsec import constants

from ebox.db_types import utcnow
from ebox.soap import wssecurity
from ebox.soap.faults import SoapFault
from ebox.soap.wssecurity import DS_NS, authenticate
from ebox.soap.xml import parse_envelope
from tests.soap.wss_helpers import (
    Identity,
    body_of,
    make_identity,
    q,
    register,
    serialize,
    signature_of,
    signed_request,
)

EXC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
MAX_BYTES = 1_000_000
ACCEPTED = "accepted"

Change = Callable[[etree._Element, Identity], None]


@pytest.fixture(scope="module")
def rsa_identity() -> Identity:
    return make_identity("rsa")


@pytest.fixture(scope="module")
def ec_identity() -> Identity:
    return make_identity("ec")


# What xmlsec answered: the same checks, then its verify() (the code this step replaced).


def with_xmlsec(raw: bytes, now: datetime) -> str:
    envelope = parse_envelope(raw, max_bytes=MAX_BYTES)
    try:
        parts = wssecurity._find_parts(envelope)
        method = wssecurity._check_algorithms(parts.signed_info)
        wssecurity._check_timestamp(parts.timestamp, now, wssecurity.CLOCK_SKEW * 2)
        ids = wssecurity._collect_ids(envelope)
        references = wssecurity._resolve_references(parts, ids)
        wssecurity._check_key_info(parts, ids)
        der = wssecurity._token_certificate(parts.token)
        wssecurity._registered_certificate(der, now)
        for reference in references:
            wssecurity._check_digest(reference)
    except SoapFault as fault:
        return f"{fault.code}: {fault.message}"
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(der, constants.KeyDataFormatCertDer, None)
    for transform in (constants.TransformExclC14N, _transform(method)):
        context.enable_signature_transform(transform)
    for transform in (constants.TransformEnveloped, constants.TransformExclC14N):
        context.enable_reference_transform(transform)
    for reference in references:
        context.enable_reference_transform(_transform(reference.digest_method))
        name = etree.QName(reference.id_attribute)
        context.register_id(reference.element, name.localname, name.namespace)
    try:
        context.verify(parts.signature)
    except xmlsec.Error:
        return "SIGNATURE_INVALID: The signature does not verify with the request's certificate."
    return ACCEPTED


def _transform(href: str) -> object:
    return next(
        getattr(constants, name)
        for name in dir(constants)
        if name.startswith("Transform") and getattr(getattr(constants, name), "href", "") == href
    )


def without_xmlsec(raw: bytes, now: datetime) -> str:
    envelope = parse_envelope(raw, max_bytes=MAX_BYTES)
    try:
        authenticate(
            envelope,
            now=now,
            max_timestamp_lifetime=wssecurity.CLOCK_SKEW * 2,
        )
    except SoapFault as fault:
        return f"{fault.code}: {fault.message}"
    return ACCEPTED


# Changes to a signed request; those under SignedInfo are signed again afterwards.


def signed_info(envelope: etree._Element) -> etree._Element:
    return signature_of(envelope).find(q(DS_NS, "SignedInfo"))


def sign_again(envelope: etree._Element, identity: Identity) -> None:
    """Sign SignedInfo as it now stands, canonicalised as xmlsec reads it."""
    info = signed_info(envelope)
    method = info.find(q(DS_NS, "CanonicalizationMethod"))
    found = method.find(q(EXC_NS, "InclusiveNamespaces")) if method is not None else None
    prefixes = (found.get("PrefixList") or "").split(" ") if found is not None else []
    canonical = etree.tostring(
        info,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=[p for p in prefixes if p] or None,
    )
    key = serialization.load_pem_private_key(identity.key_pem, None)
    if isinstance(key, rsa.RSAPrivateKey):
        value = key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(canonical, ec.ECDSA(hashes.SHA256())))
        value = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    signature_of(envelope).find(q(DS_NS, "SignatureValue")).text = base64.b64encode(value).decode()


def in_signed_info(change: Callable[[etree._Element], None]) -> Change:
    def changed(envelope: etree._Element, identity: Identity) -> None:
        change(signed_info(envelope))
        sign_again(envelope, identity)

    return changed


def signature_value(change: Callable[[bytes], str]) -> Change:
    def changed(envelope: etree._Element, identity: Identity) -> None:
        node = signature_of(envelope).find(q(DS_NS, "SignatureValue"))
        node.text = change(base64.b64decode("".join((node.text or "").split())))

    return changed


def _append(tag: str) -> Callable[[etree._Element], None]:
    return lambda info: etree.SubElement(info, tag)


def _swap_methods(info: etree._Element) -> None:
    info.insert(0, info[1])


def _comment(info: etree._Element) -> None:
    info.insert(1, etree.Comment(" a comment "))


def _inclusive(prefix_list: str | None, copies: int = 1) -> Callable[[etree._Element], None]:
    def change(info: etree._Element) -> None:
        method = info.find(q(DS_NS, "CanonicalizationMethod"))
        for _ in range(copies):
            node = etree.SubElement(method, q(EXC_NS, "InclusiveNamespaces"))
            if prefix_list is not None:
                node.set("PrefixList", prefix_list)

    return change


def _in_child(name: str, tag: str) -> Callable[[etree._Element], None]:
    def change(info: etree._Element) -> None:
        etree.SubElement(info.find(f".//{q(DS_NS, name)}"), tag)

    return change


def _method(href: str) -> Callable[[etree._Element], None]:
    return lambda info: info.find(q(DS_NS, "SignatureMethod")).set("Algorithm", href)


def _body_prefixes_only_python_splits(envelope: etree._Element, identity: Identity) -> None:
    """A reference's PrefixList with a tab: Python splits it, xmlsec does not. The DigestValue
    is made for the Python reading."""
    info = signed_info(envelope)
    body = body_of(envelope)
    reference = info.find(f"{q(DS_NS, 'Reference')}[@URI='#{body.get(_wsu_id())}']")
    transform = reference.findall(f"{q(DS_NS, 'Transforms')}/{q(DS_NS, 'Transform')}")[-1]
    etree.SubElement(transform, q(EXC_NS, "InclusiveNamespaces"), PrefixList="wsse\twsu")
    canonical = etree.tostring(
        body, method="c14n", exclusive=True, inclusive_ns_prefixes=["wsse", "wsu"]
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical)
    reference.find(q(DS_NS, "DigestValue")).text = base64.b64encode(digest.finalize()).decode()
    sign_again(envelope, identity)


def _wsu_id() -> str:
    return f"{{{wssecurity.WSU_NS}}}Id"


def _digest_value_split_by_element(envelope: etree._Element, identity: Identity) -> None:
    value = signed_info(envelope).find(f".//{q(DS_NS, 'DigestValue')}")
    text = value.text or ""
    value.text = text[:8]
    etree.SubElement(value, q(DS_NS, "Part")).tail = text[8:]
    sign_again(envelope, identity)


def _digest_value_followed_by(text: str) -> Change:
    """The DigestValue's own text intact, then an element: only xmlsec reads the element's text."""

    def changed(envelope: etree._Element, identity: Identity) -> None:
        value = signed_info(envelope).find(f".//{q(DS_NS, 'DigestValue')}")
        etree.SubElement(value, q(DS_NS, "Part")).text = text
        sign_again(envelope, identity)

    return changed


def _folded(value: bytes) -> str:
    text = base64.b64encode(value).decode()
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


RSA_CHANGES: dict[str, Change] = {
    "as signed": lambda envelope, identity: None,
    "signed again as is": in_signed_info(lambda info: None),
    "a foreign element ending SignedInfo": in_signed_info(_append("{urn:example}Extra")),
    "a ds:Object in SignedInfo": in_signed_info(_append(q(DS_NS, "Object"))),
    "SignatureMethod before CanonicalizationMethod": in_signed_info(_swap_methods),
    "a comment in SignedInfo": in_signed_info(_comment),
    "an attribute on SignedInfo": in_signed_info(lambda info: info.set("Extra", "1")),
    "InclusiveNamespaces soap": in_signed_info(_inclusive("soap")),
    "InclusiveNamespaces with two spaces": in_signed_info(_inclusive("wsse  wsu")),
    "InclusiveNamespaces with a tab": in_signed_info(_inclusive("wsse\twsu")),
    "InclusiveNamespaces #default and a trailing space": in_signed_info(_inclusive("#default ")),
    "InclusiveNamespaces without PrefixList": in_signed_info(_inclusive(None)),
    "two InclusiveNamespaces": in_signed_info(_inclusive("soap", copies=2)),
    "a foreign element in CanonicalizationMethod": in_signed_info(
        _in_child("CanonicalizationMethod", "{urn:example}Extra")
    ),
    "a foreign element in Transforms": in_signed_info(
        _in_child("Transforms", "{urn:example}Extra")
    ),
    "a foreign element in DigestMethod": in_signed_info(
        _in_child("DigestMethod", "{urn:example}Extra")
    ),
    "an HMACOutputLength in SignatureMethod": in_signed_info(
        _in_child("SignatureMethod", q(DS_NS, "HMACOutputLength"))
    ),
    "ECDSA named for an RSA key": in_signed_info(_method(constants.TransformEcdsaSha256.href)),
    "a reference's prefixes that only Python splits": _body_prefixes_only_python_splits,
    "a DigestValue split by an element": _digest_value_split_by_element,
    "a DigestValue followed by an empty element": _digest_value_followed_by(""),
    "a DigestValue followed by an element with text": _digest_value_followed_by("AAAA"),
    "SignatureValue folded in lines": signature_value(_folded),
    "SignatureValue among spaces": signature_value(
        lambda value: f" \n{base64.b64encode(value).decode()}\n\t"
    ),
    "SignatureValue with a no-break space": signature_value(
        lambda value: base64.b64encode(value).decode().replace("A", "A\u00a0", 1)
    ),
    "SignatureValue without its padding": signature_value(
        lambda value: base64.b64encode(value).decode().rstrip("=")
    ),
    "SignatureValue with a zero byte before it": signature_value(
        lambda value: base64.b64encode(b"\x00" + value).decode()
    ),
    "SignatureValue one byte short": signature_value(
        lambda value: base64.b64encode(value[1:]).decode()
    ),
}

EC_CHANGES: dict[str, Change] = {
    "as signed": lambda envelope, identity: None,
    "r and s each with a zero byte before": signature_value(
        lambda value: base64.b64encode(b"\x00" + value[:32] + b"\x00" + value[32:]).decode()
    ),
    "an odd length": signature_value(lambda value: base64.b64encode(value[:-1]).decode()),
    "r alone": signature_value(lambda value: base64.b64encode(value[:32]).decode()),
}


def _outcomes(identity: Identity, change: Change) -> tuple[str, str]:
    envelope = etree.fromstring(signed_request(identity, "parity"))
    change(envelope, identity)
    raw = serialize(copy.deepcopy(envelope))
    now = utcnow()
    return with_xmlsec(raw, now), without_xmlsec(raw, now)


@pytest.mark.parametrize("name", list(RSA_CHANGES))
def test_rsa_signed_requests_are_judged_as_xmlsec_judged_them(
    app: Flask, rsa_identity: Identity, name: str
) -> None:
    register(rsa_identity)
    expected, answered = _outcomes(rsa_identity, RSA_CHANGES[name])
    assert answered == expected


@pytest.mark.parametrize("name", list(EC_CHANGES))
def test_ecdsa_signed_requests_are_judged_as_xmlsec_judged_them(
    app: Flask, ec_identity: Identity, name: str
) -> None:
    register(ec_identity)
    expected, answered = _outcomes(ec_identity, EC_CHANGES[name])
    assert answered == expected


def test_the_parity_cases_include_both_acceptances_and_refusals(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    verdicts = {name: _outcomes(rsa_identity, change)[0] for name, change in RSA_CHANGES.items()}
    assert verdicts["as signed"] == ACCEPTED
    assert verdicts["a comment in SignedInfo"] == ACCEPTED
    assert "does not verify" in verdicts["a foreign element ending SignedInfo"]
    assert "does not verify" in verdicts["a reference's prefixes that only Python splits"]
    assert "does not verify" in verdicts["a DigestValue followed by an element with text"]
