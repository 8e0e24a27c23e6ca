"""The SOAP endpoints and their WSDL, one pair per service (ebox.soap.service).

POST /soap/<Service>/v1 runs one request through the same steps, each of which may end it
with a Fault: read the whole body (at most soap_max_request_bytes, counted as read, and never a
body cut short), parse (ebox.soap.xml), authenticate the signature (ebox.soap.wssecurity;
healthCheck alone may come unsigned), find the operation by the request element's name,
validate that element against the service's XSD, run the operation, commit.

A request the service cannot answer because PostgreSQL or Redis is down gets the Fault
SERVICE_UNAVAILABLE and one warning line (ebox.outages); any other unexpected error
INTERNAL_ERROR and its traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, Response, abort, request
from lxml import etree
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from ebox import metrics, outages, transactions
from ebox.audit.services import Actor, record_event
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.extensions import csrf
from ebox.request_log import note_sender
from ebox.soap import ebox_message, faults, registered_mail
from ebox.soap import envelope as soap_envelope
from ebox.soap.binary import is_plain_base64
from ebox.soap.faults import SoapFault
from ebox.soap.service import Caller, Operation, Service
from ebox.soap.services import remember_request
from ebox.soap.wssecurity import authenticate
from ebox.soap.xml import SOAP11_NS, parse_envelope

log = logging.getLogger(__name__)

bp = Blueprint("soap", __name__, url_prefix="/soap")
# Institutions' back offices post XML, not forms: the signature is what authenticates them.
csrf.exempt(bp)

SERVICES = (ebox_message.SERVICE, registered_mail.SERVICE)
_WSSE_SECURITY = (
    "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}Security"
)
_SCHEMA_MESSAGE_LENGTH = 300
_READ_SIZE = 64 * 1024


@dataclass
class _Call:
    """What is known about the request so far, for the audit of a refusal."""

    sender_id: int | None = None
    operation: Operation | None = None
    payload: etree._Element | None = None
    # The signed request's replay key, once WS-Security accepted it, and until when it is kept.
    replay_key: str | None = None
    replay_expires_at: datetime | None = None


def contract(service: Service) -> Response:
    """?wsdl: the WSDL; ?xsd=NAME: a schema it imports. Both name the public address."""
    endpoint = current_settings().public_url.rstrip("/") + bp.url_prefix + service.path  # type: ignore[operator]
    if "wsdl" in request.args or "WSDL" in request.args:
        return Response(service.served_wsdl(endpoint), content_type=soap_envelope.CONTENT_TYPE)
    schema = service.served_xsd(request.args.get("xsd", ""), endpoint)
    if schema is None:
        abort(404)
    return Response(schema, content_type=soap_envelope.CONTENT_TYPE)


def endpoint(service: Service) -> Response:
    call = _Call()
    try:
        result = _handle(service, call)
        transactions.commit()
        _count(call, "ok")
        return soap_envelope.response(result)
    except SoapFault as fault:
        transactions.rollback()
        _count(call, fault.code)
        _after_refusal(call, fault)
        return soap_envelope.fault_response(fault)
    except Exception as error:
        transactions.rollback()
        down = outages.unavailable(error)
        if down is None:
            log.exception("%s request failed unexpectedly", service.name)
            _count(call, faults.INTERNAL_ERROR)
            return soap_envelope.fault_response(
                SoapFault(faults.INTERNAL_ERROR, "An internal error occurred; try again later.")
            )
        _count(call, faults.SERVICE_UNAVAILABLE)
        log.warning(
            "%s request answered SERVICE_UNAVAILABLE: %s cannot be reached (%s)",
            service.name,
            down,
            outages.describe(error),
        )
        return soap_envelope.fault_response(
            SoapFault(
                faults.SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable; try again later.",
            )
        )


for _service in SERVICES:
    bp.add_url_rule(
        _service.path,
        f"{_service.name}_contract",
        contract,
        methods=["GET"],
        defaults={"service": _service},
    )
    bp.add_url_rule(
        _service.path,
        _service.name,
        endpoint,
        methods=["POST"],
        defaults={"service": _service},
    )


def _handle(service: Service, call: _Call) -> etree._Element:
    settings = current_settings()
    envelope = parse_envelope(
        _read_body(settings.soap_max_request_bytes), max_bytes=settings.soap_max_request_bytes
    )
    body, caller = _authenticate(service, envelope, call)
    call.sender_id = caller.sender.id if caller is not None else None
    if call.sender_id is not None:
        note_sender(call.sender_id)
    payload = _payload(body)
    call.payload = payload
    operation = service.operations.get(str(payload.tag))
    if operation is None:
        raise SoapFault(
            faults.UNKNOWN_OPERATION,
            f"The service has no operation for the element {etree.QName(payload).text}.",
        )
    call.operation = operation
    _check_limit(operation, payload)
    _validate(service, operation, payload)
    return operation.run(payload, caller)


def _read_body(limit: int) -> bytes:
    """The whole request body, or a Fault: never more than limit bytes, never a truncated body.

    A request that announces more than limit is refused unread; a chunked one arrives here read
    whole already, its length announced (ebox.request_bodies). The bytes are still counted as
    they are read, whatever the server: werkzeug's stream, limited to a maximum, quietly stops
    there, so one byte more than limit is let through, to be seen and refused. A body shorter
    than announced is refused too: some servers (gunicorn) end it without an error when the
    client goes away.
    """
    too_large = SoapFault(
        faults.REQUEST_TOO_LARGE, f"The request is larger than the {limit} bytes accepted."
    )
    announced = request.content_length
    if announced is not None and announced > limit:
        raise too_large
    request.max_content_length = limit + 1
    chunks: list[bytes] = []
    received = 0
    try:
        while chunk := request.stream.read(_READ_SIZE):
            received += len(chunk)
            if received > limit:
                raise too_large
            chunks.append(chunk)
    except RequestEntityTooLarge:
        raise too_large from None
    except ClientDisconnected:  # werkzeug's word for any error reading the input, a reset too
        raise _incomplete(received, announced, "disconnected") from None
    if announced is not None and received != announced:
        raise _incomplete(received, announced, "ended")
    return b"".join(chunks)


def _incomplete(received: int, announced: int | None, how: str) -> SoapFault:
    """The Fault for a body cut short: the client went away, which is no fault of ours."""
    log.info(
        "a SOAP request body broke off after %d of %s bytes (%s)",
        received,
        announced if announced is not None else "unannounced",
        how,
    )
    return SoapFault(faults.XML_MALFORMED, "The request ended before its body was complete.")


def _authenticate(
    service: Service, envelope: etree._Element, call: _Call
) -> tuple[etree._Element, Caller | None]:
    """The Body to process and who signed it; None for an unsigned anonymous operation."""
    if not _has_security_header(envelope):
        body = envelope.find(f"{{{SOAP11_NS}}}Body")
        assert body is not None  # parse_envelope checked the shape
        operation = service.operations.get(str(_payload(body).tag))
        if operation is not None and operation.allows_anonymous:
            return body, None
    authenticated = authenticate(
        envelope,
        now=utcnow(),
        max_timestamp_lifetime=timedelta(minutes=current_settings().wss_max_timestamp_minutes),
    )
    call.replay_key = authenticated.replay_key
    call.replay_expires_at = authenticated.replay_expires_at
    caller = Caller(authenticated.sender, authenticated.certificate.fingerprint_sha256)
    return authenticated.body, caller


def _has_security_header(envelope: etree._Element) -> bool:
    return envelope.find(f"{{{SOAP11_NS}}}Header/{_WSSE_SECURITY}") is not None


def _payload(body: etree._Element) -> etree._Element:
    children = [child for child in body if isinstance(child.tag, str)]
    if len(children) != 1 or (body.text or "").strip():
        raise SoapFault(
            faults.SCHEMA_INVALID, "The SOAP Body must contain exactly one request element."
        )
    return children[0]


def _check_limit(operation: Operation, payload: etree._Element) -> None:
    if operation.limit is None:
        return
    name, most = operation.limit
    namespace = etree.QName(payload).namespace
    count = sum(1 for _ in payload.iterfind(f"{{{namespace}}}{name}"))
    if count > most:
        raise SoapFault(
            faults.TOO_MANY_IDS, f"At most {most} {name} elements per request ({count} given)."
        )


def _validate(service: Service, operation: Operation, payload: etree._Element) -> None:
    schema = service.schema()
    if _is_valid_with_bulk_aside(schema, operation, payload) or schema.validate(payload):
        return
    error = schema.error_log.last_error
    message = error.message if error is not None else "The request does not follow the schema."
    if len(message) > _SCHEMA_MESSAGE_LENGTH:
        message = message[: _SCHEMA_MESSAGE_LENGTH - 1] + "…"
    raise SoapFault(faults.SCHEMA_INVALID, f"The request does not follow the schema: {message}")


def _is_valid_with_bulk_aside(
    schema: etree.XMLSchema, operation: Operation, payload: etree._Element
) -> bool:
    """Whether the request is valid, its bulk (the document, as base64) checked apart.

    libxml2 spends most of a publication's validation checking the 137 kB of base64 character by
    character. Plain base64 is valid base64Binary, so the schema is run with the bulk's element
    swapped for an empty one of the same name (an empty value is valid too), and the answer is
    the same. Only an element with nothing but text, and no attribute, is swapped (an attribute
    such as xsi:type could change what the schema checks). False whenever this cannot tell: the
    caller then validates the whole request, whose errors are the ones reported.
    """
    if not operation.bulk:
        return False
    namespace = etree.QName(payload).namespace
    path = "/".join(f"{{{namespace}}}{name}" for name in operation.bulk)
    bulky = list(payload.iterfind(path))
    if any(len(node) or node.attrib or not is_plain_base64(node.text or "") for node in bulky):
        return False
    # Swapping elements moves no text: setting a 137 kB text back would copy it all again.
    stand_ins = [etree.Element(node.tag) for node in bulky]
    for node, stand_in in zip(bulky, stand_ins, strict=True):
        node.getparent().replace(node, stand_in)
    try:
        return bool(schema.validate(payload))
    finally:
        for node, stand_in in zip(bulky, stand_ins, strict=True):
            stand_in.getparent().replace(stand_in, node)


def _count(call: _Call, result: str) -> None:
    """Counted by operation and result only: never the sender, nor what was sent. A request
    refused before its operation is known counts as a publication, as in the audit log."""
    operation = call.operation.name if call.operation else "unknown"
    metrics.count_soap(
        operation, result, publishes=call.operation is None or call.operation.publishes
    )


def _after_refusal(call: _Call, fault: SoapFault) -> None:
    """A refusal of an authenticated sender is audited, in a transaction of its own.

    The refused request stays seen: its replay key, recorded in the transaction just rolled
    back, is recorded again in this one, so that nobody can send it again once whatever refused
    it has changed (a message type added, a timestamp authority back).
    """
    if call.sender_id is None:
        return
    is_publication = call.operation is None or call.operation.publishes
    details: dict[str, object] = {
        "code": fault.code,
        "operation": call.operation.name if call.operation else None,
    }
    if is_publication and call.payload is not None:
        details.update(_message_id_of(call.payload))
    try:
        if call.replay_key is not None and call.replay_expires_at is not None:
            remember_request(call.replay_key, expires_at=call.replay_expires_at)
        record_event(
            Actor("sender", str(call.sender_id)),
            faults.PUBLICATION_REFUSED if is_publication else faults.REQUEST_REFUSED,
            "sender",
            call.sender_id,
            details,
        )
        transactions.commit()
    except Exception as error:
        transactions.rollback()
        down = outages.unavailable(error)
        if down is None:
            log.exception("could not audit a refused request of sender %s", call.sender_id)
        else:
            log.warning(
                "could not audit a refused request of sender %s: %s cannot be reached (%s)",
                call.sender_id,
                down,
                outages.describe(error),
            )


def _message_id_of(payload: etree._Element) -> dict[str, object]:
    namespace = etree.QName(payload).namespace
    ticket = payload.findtext(f"{{{namespace}}}MessageID/{{{namespace}}}Ticket")
    sequence = payload.findtext(f"{{{namespace}}}MessageID/{{{namespace}}}Sequence")
    return {"ticket": (ticket or "")[:25] or None, "sequence": (sequence or "")[:5] or None}
