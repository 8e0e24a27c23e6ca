"""The operations of the RegisteredMail v1 service: registered documents and their proofs.

Only senders approved for registered mail (Sender.may_send_registered) may call any of them.
A registered document is published by the same rules as any other (ebox.mailbox.publication); its
evidence is sealed in the same transaction (ebox.evidence.services) and the PDF proof is made by
the worker, so getProofOfDelivery answers PROOF_NOT_READY for the moment in between.
"""

from __future__ import annotations

import base64
import uuid

from lxml import etree

from ebox.evidence import services as evidence
from ebox.evidence.models import Evidence
from ebox.evidence.xml import SUBMISSION_ACCEPTANCE
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.publication import expiration_day
from ebox.soap import faults, messages
from ebox.soap.envelope import element_in
from ebox.soap.faults import SoapFault
from ebox.soap.messages import xsd_datetime
from ebox.soap.service import Caller, Operation, Service

NS = "urn:ebox:ns:RegisteredMail:v1"


def _element(name: str, text: object = None, *children: etree._Element) -> etree._Element:
    return element_in(NS, "rm", name, text, *children)


def _qualified(name: str) -> str:
    return f"{{{NS}}}{name}"


def _authorised(caller: Caller | None) -> Caller:
    assert caller is not None  # no operation here is anonymous
    if not caller.sender.may_send_registered:
        raise SoapFault(
            faults.REGISTERED_MAIL_NOT_ALLOWED,
            "This sender is not approved for registered mail; ask eBox support to grant it.",
        )
    return caller


def _evidence_element(name: str, item: Evidence) -> etree._Element:
    return _element(
        name,
        None,
        _element("EvidenceId", item.id),
        _element("Type", item.event),
        _element("Time", xsd_datetime(item.event_at)),
        _element("Xml", base64.b64encode(item.xml).decode("ascii")),
    )


# --- sendRegisteredDocument -----------------------------------------------------------------


def send_registered_document(request: etree._Element, caller: Caller | None) -> etree._Element:
    accepted = messages.publish(request, _authorised(caller), is_registered=True)
    document = accepted.document
    chain = evidence.chain_of(document.id)
    acceptance = next(item for item in chain if item.event == SUBMISSION_ACCEPTANCE)
    return _element(
        "sendRegisteredDocumentResponse",
        None,
        _element("EboxMessageId", document.id),
        _element("ExpirationDate", expiration_day(document.expires_at).isoformat()),
        _element("CitizenActivated", accepted.citizen_activated),
        _evidence_element("SubmissionAcceptance", acceptance),
    )


# --- getRegisteredMailStatus ----------------------------------------------------------------


def get_registered_mail_status(request: etree._Element, caller: Caller | None) -> etree._Element:
    sender = _authorised(caller).sender
    queries = messages.queries_of(request)
    documents = [
        document for document in messages.own_documents(sender, queries) if document.is_registered
    ]
    chains = evidence.event_chains([document.id for document in documents])
    proofs = evidence.latest_proof_versions([document.id for document in documents])
    answer = _element("getRegisteredMailStatusResponse")
    for query in queries:
        document = messages.match(query, documents)
        node = _element(
            "RegisteredMailStatus",
            None,
            messages.copy_query(query.node),
            _element("Found", document is not None),
        )
        if document is not None:
            node.append(_element("EboxMessageId", document.id))
            node.append(messages.message_id_element(NS, "rm", document))
            for item in chains.get(document.id, []):
                node.append(
                    _element(
                        "Event",
                        None,
                        _element("Type", item.event),
                        _element("Time", xsd_datetime(item.event_at)),
                        _element("EvidenceId", item.id),
                    )
                )
            if document.id in proofs:
                node.append(_element("ProofVersion", proofs[document.id]))
        answer.append(node)
    return answer


# --- getProofOfDelivery ---------------------------------------------------------------------


def get_proof_of_delivery(request: etree._Element, caller: Caller | None) -> etree._Element:
    sender = _authorised(caller).sender
    document_id = uuid.UUID(request.findtext(_qualified("EboxMessageId")) or "")
    document = db.session.get(Document, document_id)
    # Another sender's message is answered exactly like a missing one.
    if document is None or document.sender_id != sender.id or not document.is_registered:
        raise SoapFault(
            faults.MESSAGE_NOT_FOUND,
            f"No registered message {document_id} of this sender is known.",
        )
    chain = evidence.chain_of(document.id)
    if not chain:
        raise SoapFault(
            faults.MESSAGE_NOT_FOUND,
            f"The evidence of registered message {document_id} is past its retention period "
            "and was deleted.",
        )
    proof = evidence.latest_proof(document.id)
    if proof is None or proof.evidence_count < len(chain):
        raise SoapFault(
            faults.PROOF_NOT_READY,
            f"The proof of delivery of the latest event ({chain[-1].event}) is being made; "
            "try again in a minute.",
        )
    answer = _element(
        "getProofOfDeliveryResponse",
        None,
        _element("EboxMessageId", document.id),
        _element("ProofVersion", proof.version),
        _element("CreatedAt", xsd_datetime(proof.created_at)),
        _element("Pdf", base64.b64encode(proof.pdf).decode("ascii")),
    )
    for item in chain:
        answer.append(_evidence_element("Evidence", item))
    return answer


OPERATIONS = {
    _qualified("sendRegisteredDocumentRequest"): Operation(
        "sendRegisteredDocument",
        send_registered_document,
        publishes=True,
        bulk=messages.DOCUMENT_CONTENT,
    ),
    _qualified("getRegisteredMailStatusRequest"): Operation(
        "getRegisteredMailStatus",
        get_registered_mail_status,
        limit=("Query", messages.MAX_STATUS_QUERIES),
    ),
    _qualified("getProofOfDeliveryRequest"): Operation("getProofOfDelivery", get_proof_of_delivery),
}

SERVICE = Service(
    name="RegisteredMail",
    version="v1",
    namespace=NS,
    wsdl_file="RegisteredMail-v1.wsdl",
    xsd_files=("RegisteredMail-v1.xsd", "EboxMessage-v1.xsd"),
    operations=OPERATIONS,
)
