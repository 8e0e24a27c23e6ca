"""SOAP Faults: every refusal of a web service call, with a stable business code.

The code goes into the Fault's detail so that a back office can act on it without parsing the
message; the message says, in English, what was wrong. docs/integration/ lists every code.
"""

from __future__ import annotations

# A refused publication is answered with the publication rule's own code.
# The attachments' codes are the REST API's only (SOAP publishes one document), listed here so
# that every business code lives in one table.
from ebox.mailbox.publication import (  # noqa: F401 (Fault codes too)
    ATTACHMENT_TYPE_REFUSED,
    DIGEST_MISMATCH,
    DOCUMENT_TOO_LARGE,
    DUPLICATE_MESSAGE_ID,
    EXPIRATION_OUT_OF_BOUNDS,
    INVALID_NATIONAL_NUMBER,
    MESSAGE_TOO_LARGE,
    MESSAGE_TYPE_UNKNOWN,
    NOT_A_PDF,
    SENDER_SUSPENDED,
    TOO_MANY_ATTACHMENTS,
)

# Security: the request is not (provably) from an authorised sender.
SECURITY_HEADER_MISSING = "SECURITY_HEADER_MISSING"
SIGNATURE_INVALID = "SIGNATURE_INVALID"
SIGNATURE_ALGORITHM_REFUSED = "SIGNATURE_ALGORITHM_REFUSED"
TIMESTAMP_INVALID = "TIMESTAMP_INVALID"
REPLAY = "REPLAY"
CERTIFICATE_UNKNOWN = "CERTIFICATE_UNKNOWN"
CERTIFICATE_REVOKED = "CERTIFICATE_REVOKED"
CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
# The request itself.
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
XML_MALFORMED = "XML_MALFORMED"
XML_FORBIDDEN = "XML_FORBIDDEN"  # a DTD, an entity, too deep
SCHEMA_INVALID = "SCHEMA_INVALID"
UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
TOO_MANY_IDS = "TOO_MANY_IDS"
# Business rules of a publication (the others are the publication rule's, imported above).
REGISTERED_MAIL_NOT_HERE = "REGISTERED_MAIL_NOT_HERE"
# Registered mail.
REGISTERED_MAIL_NOT_ALLOWED = "REGISTERED_MAIL_NOT_ALLOWED"
MESSAGE_NOT_FOUND = "MESSAGE_NOT_FOUND"
PROOF_NOT_READY = "PROOF_NOT_READY"  # the worker has not yet made the proof of the last event
# Ours.
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
INTERNAL_ERROR = "INTERNAL_ERROR"

_SERVER_SIDE = {SERVICE_UNAVAILABLE, INTERNAL_ERROR, PROOF_NOT_READY}

# The audit actions of a refused call (the admin dashboard counts them).
PUBLICATION_REFUSED = "publication.refused"
REQUEST_REFUSED = "request.refused"
REFUSAL_ACTIONS = (PUBLICATION_REFUSED, REQUEST_REFUSED)


class SoapFault(Exception):
    """Raised anywhere in the SOAP layer; the endpoint turns it into a Fault response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def is_client_error(self) -> bool:
        """soap:Client (the request must change) or soap:Server (it may succeed later)."""
        return self.code not in _SERVER_SIDE
