"""WS-Security: signed requests are accepted from registered senders only, and every way of
forging, bending or replaying a signature is refused. Real xmlsec and database."""

from __future__ import annotations

import base64
import copy
import hashlib
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import xmlsec
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from lxml import etree
from sqlalchemy import select

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.soap import faults
from ebox.soap.faults import SoapFault
from ebox.soap.jobs import forget_expired_requests
from ebox.soap.models import SeenRequest
from ebox.soap.services import remember_request
from ebox.soap.wssecurity import DS_NS, WSSE_NS, WSU_NS, Authenticated, authenticate
from ebox.soap.xml import SOAP11_NS, parse_envelope
from tests.factories import create_sender
from tests.soap.wss_helpers import (
    PAYLOAD_NS,
    WSU_ID,
    Identity,
    SignedTimestamp,
    body_of,
    make_envelope,
    make_identity,
    q,
    register,
    security_of,
    serialize,
    sign,
    signature_of,
    signed_request,
)

MAX_BYTES = 1_000_000
MAX_LIFETIME = timedelta(minutes=10)  # the default of EBOX_WSS_MAX_TIMESTAMP_MINUTES


@pytest.fixture(scope="module")
def rsa_identity() -> Identity:
    return make_identity("rsa")


@pytest.fixture(scope="module")
def ec_identity() -> Identity:
    return make_identity("ec")


def check(
    raw: bytes, now: datetime | None = None, max_lifetime: timedelta = MAX_LIFETIME
) -> Authenticated:
    return verify(parse_envelope(raw, max_bytes=MAX_BYTES), now, max_lifetime)


def verify(
    envelope: etree._Element, now: datetime | None = None, max_lifetime: timedelta = MAX_LIFETIME
) -> Authenticated:
    return authenticate(envelope, now=now or utcnow(), max_timestamp_lifetime=max_lifetime)


def refusal(
    raw: bytes, now: datetime | None = None, max_lifetime: timedelta = MAX_LIFETIME
) -> SoapFault:
    with pytest.raises(SoapFault) as caught:
        check(raw, now, max_lifetime)
    return caught.value


def check_unseen(raw: bytes, now: datetime | None = None) -> Authenticated:
    """What a request gets when it has not been seen: checked in a savepoint rolled back
    afterwards, so that it is not seen after either."""
    savepoint = db.session.begin_nested()
    try:
        return check(raw, now)
    finally:
        savepoint.rollback()


def tree(raw: bytes) -> etree._Element:
    return etree.fromstring(raw)


# Accepted requests


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_signed_request_is_authenticated_as_the_owner_of_its_certificate(
    app: Flask, kind: str, rsa_identity: Identity, ec_identity: Identity
) -> None:
    identity = rsa_identity if kind == "rsa" else ec_identity
    record = register(identity)
    envelope = parse_envelope(signed_request(identity, "payload text"), max_bytes=MAX_BYTES)

    result = verify(envelope)

    assert result.sender.id == record.sender_id
    assert result.certificate.id == record.id
    assert result.body is envelope.find(q(SOAP11_NS, "Body"))
    assert result.body.findtext(f"{q(PAYLOAD_NS, 'ping')}/{q(PAYLOAD_NS, 'text')}") == (
        "payload text"
    )


@pytest.mark.parametrize(
    ("kind", "method", "digest"),
    [
        ("rsa", xmlsec.Transform.RSA_SHA512, xmlsec.Transform.SHA512),
        ("ec", xmlsec.Transform.ECDSA_SHA384, xmlsec.Transform.SHA256),
        ("ec", xmlsec.Transform.ECDSA_SHA512, xmlsec.Transform.SHA512),
    ],
)
def test_stronger_algorithms_are_accepted(
    app: Flask,
    kind: str,
    method: object,
    digest: object,
    rsa_identity: Identity,
    ec_identity: Identity,
) -> None:
    identity = rsa_identity if kind == "rsa" else ec_identity
    register(identity)
    raw = signed_request(identity, signature_method=method, digest_method=digest)
    assert check(raw).body is not None


def test_a_request_shaped_like_node_soaps_default_is_accepted(
    app: Flask, rsa_identity: Identity
) -> None:
    """Plain Id attributes, a 10-minute Timestamp and [enveloped-signature, exc-c14n]."""
    record = register(rsa_identity)
    raw = signed_request(
        rsa_identity,
        lifetime=timedelta(minutes=10),
        transforms=(xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N),
        id_attribute="Id",
    )
    envelope = tree(raw)
    assert body_of(envelope).get("Id") is not None and body_of(envelope).get(WSU_ID) is None

    assert check(raw).certificate.id == record.id


@pytest.mark.parametrize("attribute", ["Id", "ID", "id", "{urn:example:any}Id"])
def test_the_signed_body_and_timestamp_may_carry_any_id_attribute(
    app: Flask, rsa_identity: Identity, attribute: str
) -> None:
    register(rsa_identity)
    assert check(signed_request(rsa_identity, id_attribute=attribute)).body is not None


def test_a_request_signed_by_zeeps_binary_signature_with_a_timestamp_is_accepted(
    app: Flask, rsa_identity: Identity, tmp_path: Path
) -> None:
    from zeep.wsse.signature import BinarySignature

    record = register(rsa_identity)
    (tmp_path / "key.pem").write_bytes(rsa_identity.key_pem)
    (tmp_path / "cert.pem").write_bytes(rsa_identity.cert_pem)
    signer = BinarySignature(
        str(tmp_path / "key.pem"),
        str(tmp_path / "cert.pem"),
        signature_method=xmlsec.Transform.RSA_SHA256,
        digest_method=xmlsec.Transform.SHA256,
    )
    envelope = make_envelope("from zeep", with_security=False)
    headers: dict[str, str] = {}
    for step in (SignedTimestamp(), signer):
        envelope, headers = step.apply(envelope, headers)

    result = check(serialize(envelope))

    assert result.certificate.id == record.id
    assert "from zeep" in etree.tostring(result.body, encoding="unicode")


@pytest.mark.slow
def test_an_accepted_request_also_verifies_with_debians_xmlsec1(
    app: Flask, rsa_identity: Identity, ec_identity: Identity, tmp_path: Path
) -> None:
    for identity in (rsa_identity, ec_identity):
        register(identity)
        raw = signed_request(identity)
        check(raw)
        (tmp_path / "cert.pem").write_bytes(identity.cert_pem)
        (tmp_path / "signed.xml").write_bytes(raw)
        (tmp_path / "altered.xml").write_bytes(raw.replace(b">Hello<", b">Hello!<"))

        assert _xmlsec1_verify(tmp_path, "signed.xml").returncode == 0
        assert _xmlsec1_verify(tmp_path, "altered.xml").returncode != 0


def _xmlsec1_verify(directory: Path, name: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--id-attr:Id",
            f"{SOAP11_NS}:Body",
            "--id-attr:Id",
            f"{WSU_NS}:Timestamp",
            "--pubkey-cert-pem",
            str(directory / "cert.pem"),
            str(directory / name),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )


# Missing or broken security


def test_a_request_without_a_security_header_is_refused(app: Flask) -> None:
    raw = serialize(make_envelope(with_security=False))
    assert refusal(raw).code == faults.SECURITY_HEADER_MISSING

    no_header = raw.replace(b"<soap:Header/>", b"")
    assert b"Header" not in no_header
    assert refusal(no_header).code == faults.SECURITY_HEADER_MISSING


def test_a_request_with_a_token_and_timestamp_but_no_signature_is_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    security_of(envelope).remove(signature_of(envelope))

    fault = refusal(serialize(envelope))

    assert fault.code == faults.SIGNATURE_INVALID
    assert "Signature" in fault.message


def test_a_body_altered_after_signing_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity, "pay 10 euros")
    assert refusal(raw.replace(b"pay 10 euros", b"pay 99 euros")).code == (faults.SIGNATURE_INVALID)


def test_a_body_altered_with_its_digest_recomputed_is_refused_by_the_signature_value(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity, "pay 10 euros"))
    body = body_of(envelope)
    body.find(f".//{q(PAYLOAD_NS, 'text')}").text = "pay 99 euros"
    canonical = etree.tostring(body, method="c14n", exclusive=True)
    reference = signature_of(envelope).find(
        f".//{q(DS_NS, 'Reference')}[@URI='#{body.get(WSU_ID)}']"
    )
    reference.find(q(DS_NS, "DigestValue")).text = base64.b64encode(
        hashlib.sha256(canonical).digest()
    ).decode()

    fault = refusal(serialize(envelope))

    assert fault.code == faults.SIGNATURE_INVALID
    assert "does not verify" in fault.message


def test_a_timestamp_altered_after_signing_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    created = security_of(envelope).find(f"{q(WSU_NS, 'Timestamp')}/{q(WSU_NS, 'Created')}")
    created.text = created.text.replace("Z", "1Z") if created.text else created.text
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID


def test_a_corrupted_signature_value_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    value = signature_of(envelope).find(q(DS_NS, "SignatureValue"))
    raw_value = bytearray(base64.b64decode("".join((value.text or "").split())))
    raw_value[10] ^= 0x01
    value.text = base64.b64encode(bytes(raw_value)).decode()
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID


def test_a_token_swapped_for_another_senders_certificate_is_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    other = make_identity("rsa", name="Other Institution")
    register(rsa_identity)
    register(other)
    envelope = tree(signed_request(rsa_identity))
    token = security_of(envelope).find(q(WSSE_NS, "BinarySecurityToken"))
    token.text = base64.b64encode(other.cert_der).decode()
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID


# Signature wrapping


def _wrap_signed_body(envelope: etree._Element, place: str) -> None:
    """Move the signed Body into a wrapper at place and put an unsigned forged Body in its stead."""
    signed = body_of(envelope)
    forged = copy.deepcopy(signed)
    del forged.attrib[WSU_ID]
    forged.find(f".//{q(PAYLOAD_NS, 'text')}").text = "forged"
    envelope.replace(signed, forged)
    wrapper = etree.Element(q(PAYLOAD_NS, "Wrapper"))
    wrapper.append(signed)
    parents = {
        "header": envelope.find(q(SOAP11_NS, "Header")),
        "security": security_of(envelope),
        "token": security_of(envelope).find(q(WSSE_NS, "BinarySecurityToken")),
        "new body": forged,
    }
    parents[place].append(wrapper)


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ("header", "must cover exactly the SOAP Body"),
        ("token", "must cover exactly the SOAP Body"),
        ("new body", "must cover exactly the SOAP Body"),
        ("security", "may contain only"),
    ],
)
def test_a_signed_body_moved_into_a_wrapper_with_an_unsigned_body_is_refused(
    app: Flask, rsa_identity: Identity, place: str, message: str
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    _wrap_signed_body(envelope, place)
    raw = serialize(envelope)
    # The digests of the moved Body still match: only the resolution by identity refuses it.
    assert b">forged<" in raw

    fault = refusal(raw)

    assert fault.code == faults.SIGNATURE_INVALID
    assert message in fault.message


def test_a_second_body_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    forged = copy.deepcopy(body_of(envelope))
    del forged.attrib[WSU_ID]
    envelope.insert(1, forged)

    assert refusal(serialize(envelope)).code == faults.XML_MALFORMED
    with pytest.raises(SoapFault) as caught:  # authenticate checks it too, on its own
        verify(envelope)
    assert caught.value.code == faults.XML_MALFORMED


@pytest.mark.parametrize(
    "attribute", [WSU_ID, "Id", "ID", "id", "{http://www.w3.org/XML/1998/namespace}id"]
)
def test_duplicate_ids_are_refused(app: Flask, rsa_identity: Identity, attribute: str) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    signed = body_of(envelope)
    forged = copy.deepcopy(signed)
    forged.find(f".//{q(PAYLOAD_NS, 'text')}").text = "forged"
    envelope.replace(signed, forged)
    envelope.find(q(SOAP11_NS, "Header")).append(signed)
    if attribute != WSU_ID:  # the forged Body claims the signed Body's Id under another name
        forged.set(attribute, str(forged.attrib.pop(WSU_ID)))

    fault = refusal(serialize(envelope))

    assert fault.code == faults.SIGNATURE_INVALID
    assert "same Id" in fault.message


def test_a_signature_over_the_body_only_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    fault = refusal(signed_request(rsa_identity, covers=("body",)))
    assert fault.code == faults.SIGNATURE_INVALID
    assert "Timestamp" in fault.message


def test_a_signature_over_the_timestamp_only_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity, covers=("timestamp", "token"))
    assert refusal(raw).code == faults.SIGNATURE_INVALID


def test_a_signature_that_also_covers_the_token_is_accepted(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity, covers=("body", "timestamp", "token"))
    assert check(raw).body is not None


def test_a_signature_over_the_payload_instead_of_the_body_is_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    envelope = make_envelope()
    sign(envelope, rsa_identity, covers=("timestamp",), extra_targets=(body_of(envelope)[0],))
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID


def test_a_signature_covering_an_extra_element_is_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    envelope = make_envelope()
    extra = etree.SubElement(envelope.find(q(SOAP11_NS, "Header")), q(PAYLOAD_NS, "Routing"))
    sign(envelope, rsa_identity, extra_targets=(extra,))
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID


@pytest.mark.parametrize(
    "uri", ["", "#xpointer(/)", "#xpointer(id('{id}'))", "http://127.0.0.1:9/x"]
)
def test_references_other_than_a_local_id_are_refused(
    app: Flask, rsa_identity: Identity, uri: str
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    body_id = body_of(envelope).get(WSU_ID)
    reference = signature_of(envelope).find(f".//{q(DS_NS, 'Reference')}[@URI='#{body_id}']")
    reference.set("URI", uri.format(id=body_id))
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID


def test_key_info_pointing_elsewhere_than_the_token_is_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    pointer = signature_of(envelope).find(f".//{q(WSSE_NS, 'Reference')}")
    pointer.set("URI", "#" + body_of(envelope).get(WSU_ID, ""))
    fault = refusal(serialize(envelope))
    assert fault.code == faults.SIGNATURE_INVALID
    assert "KeyInfo" in fault.message


# Algorithms


@pytest.mark.parametrize(
    ("method", "digest"),
    [
        (xmlsec.Transform.RSA_SHA1, xmlsec.Transform.SHA256),
        (xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA1),
        (xmlsec.Transform.RSA_SHA1, xmlsec.Transform.SHA1),
    ],
)
def test_sha1_signatures_and_digests_are_refused(
    app: Flask, rsa_identity: Identity, method: object, digest: object
) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity, signature_method=method, digest_method=digest)
    fault = refusal(raw)
    assert fault.code == faults.SIGNATURE_ALGORITHM_REFUSED
    assert "SHA-1" in fault.message


def test_an_hmac_signature_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    method = signature_of(envelope).find(f".//{q(DS_NS, 'SignatureMethod')}")
    method.set("Algorithm", xmlsec.Transform.HMAC_SHA256.href)
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_ALGORITHM_REFUSED


ENVELOPED = xmlsec.Transform.ENVELOPED
EXCL_C14N = xmlsec.Transform.EXCL_C14N


@pytest.mark.parametrize(
    "transforms",
    [
        (EXCL_C14N, ENVELOPED),
        (ENVELOPED,),
        (ENVELOPED, ENVELOPED, EXCL_C14N),
        (ENVELOPED, ENVELOPED),
    ],
)
def test_the_enveloped_signature_transform_is_accepted_only_just_before_exclusive_c14n(
    app: Flask, rsa_identity: Identity, transforms: tuple[object, ...]
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity, transforms=(ENVELOPED, EXCL_C14N)))
    # xmlsec would not sign most of these lists: the Body's is rewritten after signing.
    listed = signature_of(envelope).find(f".//{q(DS_NS, 'Transforms')}")
    for old in list(listed):
        listed.remove(old)
    for transform in transforms:
        href = transform.href  # type: ignore[attr-defined]
        etree.SubElement(listed, q(DS_NS, "Transform"), Algorithm=href)

    fault = refusal(serialize(envelope))

    assert fault.code == faults.SIGNATURE_ALGORITHM_REFUSED
    assert "enveloped-signature" in fault.message


def test_with_the_enveloped_signature_transform_a_signature_inside_the_body_stays_signed(
    app: Flask, rsa_identity: Identity
) -> None:
    """The transform removes only the request's own Signature, which no signed element holds:
    a ds:Signature carried in the payload is digested like any other content."""
    register(rsa_identity)
    envelope = make_envelope()
    payload_signature = etree.SubElement(body_of(envelope)[0], q(DS_NS, "Signature"))
    etree.SubElement(payload_signature, q(DS_NS, "SignatureValue")).text = "AAAA"
    sign(envelope, rsa_identity, transforms=(ENVELOPED, EXCL_C14N))
    raw = serialize(envelope)
    assert check(raw).body is not None

    altered = raw.replace(b">AAAA<", b">BBBB<")
    assert altered != raw
    assert refusal(altered).code == faults.SIGNATURE_INVALID


def test_inclusive_canonicalization_and_extra_transforms_are_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    method = signature_of(envelope).find(f".//{q(DS_NS, 'CanonicalizationMethod')}")
    method.set("Algorithm", xmlsec.Transform.C14N.href)
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_ALGORITHM_REFUSED

    envelope = tree(signed_request(rsa_identity))
    transforms = signature_of(envelope).find(f".//{q(DS_NS, 'Transforms')}")
    etree.SubElement(transforms, q(DS_NS, "Transform"), Algorithm=xmlsec.Transform.XPATH.href)
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_ALGORITHM_REFUSED


# Timestamp


@pytest.mark.parametrize(
    ("created_offset", "lifetime", "message"),
    [
        (timedelta(minutes=-11), timedelta(minutes=5), "more than 5 minutes ago"),
        (timedelta(minutes=-4), timedelta(minutes=3), "expired"),
        (timedelta(minutes=6), timedelta(minutes=5), "future"),
        (timedelta(0), timedelta(minutes=10, seconds=1), "within 10 minutes"),
        (timedelta(0), timedelta(0), "within 10 minutes"),
    ],
)
def test_a_timestamp_outside_its_window_is_refused(
    app: Flask,
    rsa_identity: Identity,
    created_offset: timedelta,
    lifetime: timedelta,
    message: str,
) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity, created=utcnow() + created_offset, lifetime=lifetime)
    fault = refusal(raw)
    assert fault.code == faults.TIMESTAMP_INVALID
    assert message in fault.message


@pytest.mark.parametrize("bound_minutes", [3, 10, 60])
def test_a_timestamp_may_live_up_to_the_configured_bound_and_not_a_second_longer(
    app: Flask, rsa_identity: Identity, bound_minutes: int
) -> None:
    register(rsa_identity)
    bound = timedelta(minutes=bound_minutes)
    raw = signed_request(rsa_identity, lifetime=bound)
    assert check(raw, max_lifetime=bound).body is not None

    longer = signed_request(rsa_identity, lifetime=bound + timedelta(seconds=1))
    fault = refusal(longer, max_lifetime=bound)
    assert fault.code == faults.TIMESTAMP_INVALID
    assert f"within {bound_minutes} minutes" in fault.message


def test_a_long_lived_timestamp_is_accepted_only_within_the_clock_skew_of_its_creation(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    created = utcnow()
    raw = signed_request(rsa_identity, created=created, lifetime=timedelta(minutes=60))
    bound = timedelta(minutes=60)
    at_the_end = created + timedelta(minutes=5)
    assert check(raw, now=at_the_end, max_lifetime=bound).body is not None

    fault = refusal(raw, now=at_the_end + timedelta(seconds=1), max_lifetime=bound)
    assert fault.code == faults.TIMESTAMP_INVALID
    assert "more than 5 minutes ago" in fault.message


def test_a_timestamp_that_expires_while_in_transit_is_refused(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity)
    assert check(raw, now=utcnow() + timedelta(minutes=4)).body is not None
    fault = refusal(raw, now=utcnow() + timedelta(minutes=5, seconds=1))
    assert fault.code == faults.TIMESTAMP_INVALID


def test_a_request_without_a_timestamp_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity, with_timestamp=False)
    assert refusal(raw).code == faults.TIMESTAMP_INVALID


def test_a_timestamp_without_a_time_zone_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    now = utcnow().replace(tzinfo=None)
    texts = (now.isoformat(), (now + timedelta(minutes=5)).isoformat())
    fault = refusal(signed_request(rsa_identity, timestamp_texts=texts))
    assert fault.code == faults.TIMESTAMP_INVALID
    assert "time zone" in fault.message


def test_timestamps_with_offsets_and_long_fractions_are_understood(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    now = utcnow().astimezone(timezone(timedelta(hours=2)))
    texts = (
        now.strftime("%Y-%m-%dT%H:%M:%S.%f0+02:00"),
        (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
    )
    assert check(signed_request(rsa_identity, timestamp_texts=texts)).body is not None


# Replay


def test_the_same_signed_request_twice_is_a_replay(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity)
    check(raw)

    fault = refusal(raw)

    assert fault.code == faults.REPLAY


@pytest.mark.parametrize(
    ("lifetime", "accepted_after_creation", "window_closes_after_creation"),
    [
        # node-soap's Timestamp: 10 minutes, but Created must stay within 5 minutes of now.
        (timedelta(minutes=10), timedelta(0), timedelta(minutes=5)),
        # A sender's clock 4 minutes ahead of ours: the window opens before Created.
        (timedelta(minutes=10), timedelta(minutes=-4), timedelta(minutes=5)),
        # A short Timestamp: its expiry ends the window first.
        (timedelta(minutes=3), timedelta(minutes=1), timedelta(minutes=3)),
        (timedelta(seconds=90), timedelta(seconds=-30), timedelta(seconds=90)),
    ],
)
def test_a_request_is_remembered_exactly_as_long_as_it_could_be_accepted(
    app: Flask,
    rsa_identity: Identity,
    lifetime: timedelta,
    accepted_after_creation: timedelta,
    window_closes_after_creation: timedelta,
) -> None:
    register(rsa_identity)
    created = utcnow().replace(microsecond=0)
    raw = signed_request(rsa_identity, created=created, lifetime=lifetime)
    accepted_at = created + accepted_after_creation
    closes_at = created + window_closes_after_creation
    last_moment = closes_at - timedelta(milliseconds=1)
    # Just before the window closes, the request is accepted if it was not seen.
    assert check_unseen(raw, now=last_moment).body is not None

    check(raw, now=accepted_at)

    # The key outlives the window, by at most the one second of whole seconds.
    [seen] = db.session.scalars(select(SeenRequest)).all()
    window = closes_at - accepted_at
    assert window < seen.expires_at - accepted_at <= window + timedelta(seconds=1)
    # Seen, the request is refused until the window closes,
    assert refusal(raw, now=last_moment).code == faults.REPLAY
    # and past the window, the Timestamp alone refuses it.
    later = closes_at + timedelta(seconds=1)
    assert refusal(raw, now=later).code == faults.TIMESTAMP_INVALID


def test_a_replay_with_the_signature_value_reencoded_is_still_a_replay(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity)
    check(raw)
    envelope = tree(raw)
    value = signature_of(envelope).find(q(DS_NS, "SignatureValue"))
    text = "".join((value.text or "").split())
    value.text = "\n".join(text[i : i + 16] for i in range(0, len(text), 16))
    assert refusal(serialize(envelope)).code == faults.REPLAY


def test_a_replay_with_the_twin_ecdsa_signature_is_still_a_replay(
    app: Flask, ec_identity: Identity
) -> None:
    register(ec_identity)
    raw = signed_request(ec_identity)
    twin = _twin_ecdsa_signature(raw)
    # The twin is a valid signature in its own right: accepted if nothing was seen.
    assert check_unseen(twin).body is not None
    check(raw)

    assert refusal(twin).code == faults.REPLAY


def _twin_ecdsa_signature(raw: bytes) -> bytes:
    """(r, s) → (r, n - s): a different SignatureValue that verifies just as well."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256
    envelope = tree(raw)
    value = signature_of(envelope).find(q(DS_NS, "SignatureValue"))
    signature = base64.b64decode("".join((value.text or "").split()))
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    value.text = base64.b64encode(r + (order - s).to_bytes(32, "big")).decode()
    return serialize(envelope)


def test_a_refused_request_is_not_remembered_as_seen(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity)
    envelope = tree(raw)
    value = signature_of(envelope).find(q(DS_NS, "SignatureValue"))
    value.text = base64.b64encode(b"\x00" * 256).decode()
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID

    assert check(raw).body is not None


def test_the_replay_guard_records_a_key_once_and_forgets_it_with_the_transaction(
    app: Flask,
) -> None:
    expires_at = utcnow() + timedelta(minutes=1)
    assert remember_request("k" * 64, expires_at=expires_at)
    assert not remember_request("k" * 64, expires_at=expires_at)

    db.session.rollback()  # the request was not answered after all

    assert remember_request("k" * 64, expires_at=expires_at)


def test_the_purge_forgets_only_keys_past_their_expiry(app: Flask) -> None:
    now = utcnow()
    remember_request("a" * 64, expires_at=now - timedelta(seconds=1))
    remember_request("b" * 64, expires_at=now + timedelta(seconds=1))
    db.session.commit()

    assert forget_expired_requests() == 1
    assert forget_expired_requests() == 0  # safe to run twice

    assert db.session.scalars(select(SeenRequest.key)).all() == ["b" * 64]


# Certificates and senders


def test_a_self_signed_certificate_that_is_not_registered_is_refused(app: Flask) -> None:
    stranger = make_identity("ec", name="Stranger")
    fault = refusal(signed_request(stranger))
    assert fault.code == faults.CERTIFICATE_UNKNOWN


def test_a_revoked_certificate_is_refused(app: Flask) -> None:
    identity = make_identity("ec")
    register(identity, revoked=True)
    assert refusal(signed_request(identity)).code == faults.CERTIFICATE_REVOKED


def test_the_other_certificate_of_a_sender_still_works_after_one_is_revoked(
    app: Flask, rsa_identity: Identity, ec_identity: Identity
) -> None:
    sender = create_sender()
    register(rsa_identity, sender, revoked=True)
    register(ec_identity, sender)
    assert check(signed_request(ec_identity)).sender.id == sender.id


def test_an_expired_certificate_is_refused(app: Flask) -> None:
    now = utcnow()
    expired = make_identity(
        "ec", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    register(expired)
    assert refusal(signed_request(expired)).code == faults.CERTIFICATE_EXPIRED


def test_a_certificate_not_yet_valid_is_refused(app: Flask) -> None:
    now = utcnow()
    future = make_identity(
        "ec", not_before=now + timedelta(days=1), not_after=now + timedelta(days=30)
    )
    register(future)
    assert refusal(signed_request(future)).code == faults.CERTIFICATE_EXPIRED


def test_a_certificate_recorded_as_expired_is_refused_even_if_the_x509_says_otherwise(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity, not_after=utcnow() - timedelta(seconds=1))
    assert refusal(signed_request(rsa_identity)).code == faults.CERTIFICATE_EXPIRED


def test_a_suspended_sender_is_refused(app: Flask, rsa_identity: Identity) -> None:
    record = register(rsa_identity, create_sender(is_active=False))
    fault = refusal(signed_request(rsa_identity))
    assert fault.code == faults.SENDER_SUSPENDED
    record.sender.is_active = True
    db.session.commit()
    assert check(signed_request(rsa_identity)).sender.id == record.sender_id


def test_fault_messages_are_plain_english_without_internals(
    app: Flask, rsa_identity: Identity
) -> None:
    register(rsa_identity)
    raw = signed_request(rsa_identity).replace(b">Hello<", b">Hellx<")
    message = refusal(raw).message
    assert message.endswith(".")
    for internal in ("xmlsec", "lxml", "Traceback", "func=", "0x", "sqlalchemy"):
        assert internal not in message


def test_ec_identity_fixture_is_p256(ec_identity: Identity) -> None:
    key = ec_identity.certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"


def test_a_signature_carrying_an_object_is_refused(app: Flask, rsa_identity: Identity) -> None:
    register(rsa_identity)
    envelope = tree(signed_request(rsa_identity))
    etree.SubElement(signature_of(envelope), q(DS_NS, "Object")).text = "extra"
    assert refusal(serialize(envelope)).code == faults.SIGNATURE_INVALID
