"""The public-key step of WS-Security: the SignatureValue over the canonical SignedInfo.

ebox.soap.wssecurity has by then resolved each reference to an element of its own choosing (the
Body, the Timestamp, the token) and compared our digest of that very element with the
DigestValue the reference holds. Proving that the certificate's key signed SignedInfo, which holds
those DigestValues, binds the elements to the signature. Nothing is resolved or digested again.

xmlsec's SignatureContext.verify() did this step before, and digested every reference a second
time on its own (the 137 kB Body among them). SignedInfo is read here exactly as xmlsec 1.3
read it, so that the same requests are accepted and refused:

- SignedInfo holds a CanonicalizationMethod, a SignatureMethod, then one or more Reference, in
  that order, and no other element;
- exclusive C14N (of SignedInfo, and of a reference) holds nothing, or one ec:InclusiveNamespaces
  with a PrefixList, whose prefixes are separated by single spaces ("" meaning the default
  namespace, as in libxml2);
- a reference's Transforms holds ds:Transform elements only;
- DigestValue and SignatureValue are base64 read as xmlsec reads it: the element's whole text,
  trimmed; inside it only spaces, tabs and line breaks; padding required;
- each DigestValue so read equals the digest of its element, canonicalised with the prefixes read
  as above (recomputed only if they differ from the ones our digest used);
- RSA is PKCS #1 v1.5 with the method's hash; ECDSA's value is r then s, each half of it (any
  even length: some Java signers drop or add leading zero bytes).

Anything else fails as xmlsec failed: with SignatureMismatch, one refusal for every cause.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from xmlsec import constants

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"

# Signature method URI → the key it needs and its hash.
SIGNATURE_METHODS: dict[str, tuple[type, type[hashes.HashAlgorithm]]] = {
    constants.TransformRsaSha256.href: (rsa.RSAPublicKey, hashes.SHA256),
    constants.TransformRsaSha384.href: (rsa.RSAPublicKey, hashes.SHA384),
    constants.TransformRsaSha512.href: (rsa.RSAPublicKey, hashes.SHA512),
    constants.TransformEcdsaSha256.href: (ec.EllipticCurvePublicKey, hashes.SHA256),
    constants.TransformEcdsaSha384.href: (ec.EllipticCurvePublicKey, hashes.SHA384),
    constants.TransformEcdsaSha512.href: (ec.EllipticCurvePublicKey, hashes.SHA512),
}
_EXC_C14N = constants.TransformExclC14N.href
_XMLSEC_SPACES = str.maketrans("", "", " \t\r\n")
_C_SPACES = " \t\n\v\f\r"  # what C's isspace() trims
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class SignatureMismatch(Exception):
    """The signature does not verify (whatever the cause: xmlsec did not tell them apart)."""


@dataclass(frozen=True)
class CheckedReference:
    """A ds:Reference, the element it was resolved to and our digest of that element."""

    node: etree._Element
    element: etree._Element
    hash_name: str  # hashlib's name of the reference's digest algorithm
    digest: bytes
    prefixes: list[str]  # the InclusiveNamespaces our digest was canonicalised with


def verify_signed_info(
    signature: etree._Element,
    method: str,
    references: list[CheckedReference],
    public_key: CertificatePublicKeyTypes,
) -> None:
    """Raise SignatureMismatch unless the key signed this SignedInfo, read as xmlsec reads it.

    signature is the ds:Signature (SignedInfo, SignatureValue, KeyInfo: checked before);
    method its SignatureMethod, one of SIGNATURE_METHODS.
    """
    signed_info, value_node = _elements(signature)[:2]
    canonicalization = _read_signed_info(signed_info)
    for reference in references:
        _check_reference(reference)
    canonical = _canonical(signed_info, _exclusive_prefixes(canonicalization))
    _verify(public_key, method, _xmlsec_base64(value_node), canonical)


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _read_signed_info(signed_info: etree._Element) -> etree._Element:
    """SignedInfo's shape; returns its CanonicalizationMethod."""
    children = _elements(signed_info)
    names = [child.tag for child in children]
    if (
        len(names) < 3
        or names[:2] != [_ds("CanonicalizationMethod"), _ds("SignatureMethod")]
        or any(name != _ds("Reference") for name in names[2:])
    ):
        raise SignatureMismatch
    return children[0]


def _check_reference(reference: CheckedReference) -> None:
    transforms = _elements(reference.node)[0]
    steps = _elements(transforms)
    if any(step.tag != _ds("Transform") for step in steps):
        raise SignatureMismatch
    prefixes = _exclusive_prefixes(steps[-1])
    digest = reference.digest
    if prefixes != reference.prefixes:
        digest = hashlib.new(reference.hash_name, _canonical(reference.element, prefixes)).digest()
    if _xmlsec_base64(_elements(reference.node)[2]) != digest:
        raise SignatureMismatch


def _exclusive_prefixes(method: etree._Element) -> list[str]:
    """An exclusive C14N element's InclusiveNamespaces, split as xmlsec splits them."""
    children = _elements(method)
    if not children:
        return []
    prefix_list = children[0].get("PrefixList")
    if (
        len(children) > 1
        or children[0].tag != f"{{{EXC_C14N_NS}}}InclusiveNamespaces"
        or prefix_list is None
    ):
        raise SignatureMismatch
    prefixes = prefix_list.split(" ")
    # xmlsec drops an empty last item (a trailing space, or no prefix at all), and no other.
    return prefixes[:-1] if prefixes[-1] == "" else prefixes


def _canonical(element: etree._Element, prefixes: list[str]) -> bytes:
    return etree.tostring(
        element,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=prefixes or None,
    )


def _xmlsec_base64(node: etree._Element) -> bytes:
    """The element's base64 content, decoded exactly when xmlsec decodes it."""
    text = "".join(node.itertext()).strip(_C_SPACES).translate(_XMLSEC_SPACES)
    if not _BASE64.fullmatch(text):
        raise SignatureMismatch
    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise SignatureMismatch from None


def _verify(
    public_key: CertificatePublicKeyTypes, method: str, value: bytes, canonical: bytes
) -> None:
    key_type, hash_type = SIGNATURE_METHODS[method]
    if not isinstance(public_key, key_type):
        raise SignatureMismatch
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, canonical, padding.PKCS1v15(), hash_type())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(_dss(value), canonical, ec.ECDSA(hash_type()))
    except (InvalidSignature, ValueError):
        raise SignatureMismatch from None


def _dss(value: bytes) -> bytes:
    """XML-DSig's r || s as the DER structure OpenSSL verifies."""
    if not value or len(value) % 2:
        raise SignatureMismatch
    half = len(value) // 2
    return encode_dss_signature(
        int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")
    )


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"
