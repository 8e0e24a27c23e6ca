"""POST /api/v1/messages: publishing a message with its documents, exactly as SOAP publishes.

The same rules (ebox.mailbox.publication), the same audit, the same MessageID space per sender:
the message's reference is SOAP's MessageID, so a reference used over SOAP answers the same over
REST. On top, the Idempotency-Key (ebox.api.idempotency) makes a request sent twice publish once.
"""

from __future__ import annotations

import logging

from flask import Response, jsonify

from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.evidence.timestamp import TimestampError
from ebox.mailbox import publication
from ebox.mailbox.sender_messages import Accepted, is_activated, publish_audited
from ebox.senders.models import Sender
from ebox.soap import faults

from . import idempotency, problems
from .auth import current_certificate_sha256, current_sender
from .blueprint import bp
from .messages import message_details, own_message
from .problems import ApiProblem
from .submission import Submission, idempotency_key, read_submission

log = logging.getLogger(__name__)


@bp.post("/messages")
def publish_message() -> Response:
    sender = current_sender()
    key = idempotency_key()
    submission = read_submission(current_settings())
    if submission.registered and not sender.may_send_registered:
        raise ApiProblem(
            403,
            faults.REGISTERED_MAIL_NOT_ALLOWED,
            "This sender is not approved for registered mail; ask eBox support to grant it.",
        )
    earlier = idempotency.claim_key(
        sender_id=sender.id, key=key, fingerprint=submission.fingerprint, now=utcnow()
    )
    if earlier is not None:
        if earlier.fingerprint != submission.fingerprint or earlier.document_id is None:
            raise ApiProblem(
                409,
                problems.IDEMPOTENCY_KEY_REUSED,
                "This Idempotency-Key was used for another request in the last 24 hours; "
                "use a new key for a new message.",
            )
        document = own_message(sender, str(earlier.document_id))
        activated = is_activated(document.recipient_national_number)
        return _answer(Accepted(document, activated, is_new=False))
    accepted = _publish(sender, submission)
    idempotency.attach_document(sender_id=sender.id, key=key, document_id=accepted.document.id)
    return _answer(accepted)


def _publish(sender: Sender, submission: Submission) -> Accepted:
    """Publish through the one way in, audited; its refusals as problems of the same code."""
    try:
        submitted = _publication(sender, submission)
        return publish_audited(
            submitted, submission.files[0].content, _attachments(submission), channel="rest"
        )
    except publication.PublicationRefused as refusal:
        raise ApiProblem(problems.status_of(refusal.code), refusal.code, refusal.message) from None
    except TimestampError as error:
        # Registered mail's evidence is timestamped before anything is committed.
        log.error("publication refused: the timestamp authority failed: %s", error)
        raise ApiProblem(
            503,
            faults.SERVICE_UNAVAILABLE,
            "The timestamp authority that registered mail's evidence needs did not answer; "
            "nothing was published. Try again later.",
            headers={"Retry-After": "30"},
        ) from None


def _publication(sender: Sender, submission: Submission) -> publication.Publication:
    main = submission.files[0]
    return publication.Publication(
        sender=sender,
        message_type=publication.find_message_type(sender, submission.message_type),
        recipient_national_number=submission.recipient,
        ticket=submission.ticket,
        sequence=submission.sequence,
        title=submission.title,
        language=submission.language,
        body_text=submission.body_text,
        file_name=main.file_name,
        media_type=main.media_type,
        expires_at=None
        if submission.expires_on is None
        else publication.end_of_day(submission.expires_on),
        digest=publication.Digest("SHA-256", main.sha256),
        is_registered=submission.registered,
        sender_certificate_sha256=current_certificate_sha256(),
    )


def _attachments(submission: Submission) -> list[publication.SubmittedAttachment]:
    return [
        publication.SubmittedAttachment(
            file_name=item.file_name,
            media_type=item.media_type,
            content=item.content,
            digest=publication.Digest("SHA-256", item.sha256),
        )
        for item in submission.files[1:]
    ]


def _answer(accepted: Accepted) -> Response:
    """201 and its Location for a new message; 200 with the original for a repeated request."""
    document = accepted.document
    body = message_details(document, now=utcnow())
    body["citizenActivated"] = accepted.citizen_activated
    answer = jsonify(body)
    if accepted.is_new:
        answer.status_code = 201
        answer.headers["Location"] = f"/api/v1/messages/{document.id}"
    return answer
