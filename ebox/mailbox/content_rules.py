"""What a sender's files must be to enter an eBox, and the stable codes of every refusal.

ebox.mailbox.publication applies these rules to a message's main document, and
ebox.mailbox.attachments to its attachments; both refuse with PublicationRefused.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import unicodedata
from dataclasses import dataclass

PDF = "application/pdf"
PDF_MAGIC = b"%PDF-"
DIGEST_ALGORITHMS = {"SHA-256": "sha256", "SHA-512": "sha512"}

# Why a publication is refused: ebox.soap.faults answers each with the Fault code of the same name.
INVALID_NATIONAL_NUMBER = "INVALID_NATIONAL_NUMBER"
SENDER_SUSPENDED = "SENDER_SUSPENDED"
MESSAGE_TYPE_UNKNOWN = "MESSAGE_TYPE_UNKNOWN"
INVALID_FIELD = "INVALID_FIELD"  # language, title, ticket, sequence or a file name out of bounds
NOT_A_PDF = "NOT_A_PDF"
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
DIGEST_MISMATCH = "DIGEST_MISMATCH"
EXPIRATION_OUT_OF_BOUNDS = "EXPIRATION_OUT_OF_BOUNDS"
DUPLICATE_MESSAGE_ID = "DUPLICATE_MESSAGE_ID"
# Attachments (decision 0027); SOAP publishes one document and never meets them.
TOO_MANY_ATTACHMENTS = "TOO_MANY_ATTACHMENTS"
ATTACHMENT_TYPE_REFUSED = "ATTACHMENT_TYPE_REFUSED"
MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"

# The types an attachment may have, and the first bytes its content must start with (b"": no
# signature; text is checked as UTF-8 instead). Decision 0027 says why these and no others.
ATTACHMENT_MEDIA_TYPES: dict[str, bytes] = {
    PDF: PDF_MAGIC,
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "text/csv": b"",
    "text/plain": b"",
}
MAX_FILE_NAME_LENGTH = 255


class PublicationRefused(ValueError):
    """A document cannot be published. `code` is stable (faults use it), the message explains."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Digest:
    """The digest a sender computed over the content: the algorithm name and the raw bytes."""

    algorithm: str  # a key of DIGEST_ALGORITHMS
    value: bytes


def check_digest(data: bytes, digest: Digest, *, what: str = "document") -> None:
    name = DIGEST_ALGORITHMS.get(digest.algorithm)
    if name is None:
        raise PublicationRefused(
            DIGEST_MISMATCH, "The digest algorithm must be SHA-256 or SHA-512."
        )
    if not hmac.compare_digest(hashlib.new(name, data).digest(), digest.value):
        raise PublicationRefused(
            DIGEST_MISMATCH, f"The {digest.algorithm} digest does not match the {what} content."
        )


def sha256_hex(data: bytes, checked: Digest | None) -> str:
    """The content's SHA-256; the sender's, once checked equal, rather than computed again."""
    if checked is not None and checked.algorithm == "SHA-256":
        return checked.value.hex()
    return hashlib.sha256(data).hexdigest()


def is_pdf(data: bytes) -> bool:
    """A PDF header and a file pyHanko's reader can open, with a catalog and at least one page."""
    if not data.startswith(PDF_MAGIC):
        return False
    # Imported here: the reader is needed only when a document arrives.
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        pages = reader.root["/Pages"]
        return int(pages["/Count"]) >= 1
    except Exception:  # whatever a malformed file makes the parser raise, it is not a PDF
        return False


def is_of_media_type(data: bytes, media_type: str) -> bool:
    """The content is what its allowed media type says: a readable PDF, the image's signature,
    or text in UTF-8 without NUL bytes (no binary file passes as text)."""
    if media_type == PDF:
        return is_pdf(data)
    magic = ATTACHMENT_MEDIA_TYPES.get(media_type)
    if magic is None or not data:
        return False
    if magic:
        return data.startswith(magic)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


def is_safe_file_name(name: str) -> bool:
    """1 to 255 characters, no path separator, no control or invisible formatting character
    (a right-to-left override could show "evil.exe" as "exe.live")."""
    if not 1 <= len(name) <= MAX_FILE_NAME_LENGTH or not name.strip():
        return False
    return not any(char in "/\\" or _is_control(char) for char in name)


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
