"""A registered message's evidence and its proof of delivery, as the RegisteredMail service gives
them: only to senders approved for registered mail, only of their own registered messages.

The chain is listed in JSON (id, type, moment, SHA-256 of each sealed XML); each sealed XML is
served as it was sealed (application/xml), so that it verifies byte for byte; the proof is the
latest PDF the worker made, or PROOF_NOT_READY while it makes the one of the latest event.
"""

from __future__ import annotations

import uuid

from flask import Response, jsonify
from sqlalchemy import select

from ebox.evidence import services as evidence
from ebox.evidence.models import Evidence
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.soap import faults

from .auth import current_sender
from .blueprint import bp
from .messages import moment, own_message
from .problems import ApiProblem


@bp.get("/messages/<message_id>/evidence")
def list_evidence(message_id: str) -> Response:
    document = _registered_message(message_id)
    chain = evidence.event_chains([document.id]).get(document.id, [])
    items = [
        {"id": str(item.id), "type": item.event, "at": moment(item.event_at), "sha256": item.sha256}
        for item in chain
    ]
    return jsonify(messageId=str(document.id), evidence=items)


@bp.get("/messages/<message_id>/evidence/<evidence_id>")
def get_evidence(message_id: str, evidence_id: str) -> Response:
    document = _registered_message(message_id)
    item = None
    wanted = _uuid(evidence_id)
    if wanted is not None:
        item = db.session.scalar(
            select(Evidence).where(Evidence.id == wanted, Evidence.document_id == document.id)
        )
    if item is None:
        raise ApiProblem(
            404,
            faults.MESSAGE_NOT_FOUND,
            f"Message {document.id} has no evidence with id {evidence_id[:64]!r}.",
        )
    answer = Response(item.xml, content_type="application/xml")
    answer.headers["Content-Disposition"] = f'attachment; filename="evidence-{item.id}.xml"'
    return answer


@bp.get("/messages/<message_id>/proof")
def get_proof(message_id: str) -> Response:
    document = _registered_message(message_id)
    chain = evidence.event_chains([document.id]).get(document.id, [])
    if not chain:
        raise ApiProblem(
            404,
            faults.MESSAGE_NOT_FOUND,
            f"The evidence of registered message {document.id} is past its retention period "
            "and was deleted.",
        )
    proof = evidence.latest_proof(document.id)
    if proof is None or proof.evidence_count < len(chain):
        raise ApiProblem(
            409,
            faults.PROOF_NOT_READY,
            f"The proof of delivery of the latest event ({chain[-1].event}) is being made; "
            "try again in a minute.",
            headers={"Retry-After": "60"},
        )
    answer = Response(proof.pdf, content_type="application/pdf")
    answer.headers["Content-Disposition"] = (
        f'attachment; filename="proof-{document.id}-v{proof.version}.pdf"'
    )
    answer.headers["Ebox-Proof-Version"] = str(proof.version)
    return answer


def _registered_message(message_id: str) -> Document:
    sender = current_sender()
    if not sender.may_send_registered:
        raise ApiProblem(
            403,
            faults.REGISTERED_MAIL_NOT_ALLOWED,
            "This sender is not approved for registered mail; ask eBox support to grant it.",
        )
    document = own_message(sender, message_id)
    if not document.is_registered:
        raise ApiProblem(
            404,
            faults.MESSAGE_NOT_FOUND,
            f"Message {document.id} is not registered mail: it has no evidence and no proof.",
        )
    return document


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
