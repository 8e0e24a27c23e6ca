"""The citizen's inbox, documents and access history.

A document of another citizen answers exactly like a missing one (404), so that ids cannot be
probed; the attempt is logged as a warning. How the pages write dates, sizes and an inbox line's
words is ebox.mailbox.wording's.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ebox.accounts.models import Citizen, WebSession
from ebox.accounts.sessions import current_citizen, login_required
from ebox.config import current_settings
from ebox.db_types import utcnow
from ebox.evidence.xml import RecipientAuthentication, Representative
from ebox.mailbox import queries, services
from ebox.mailbox.forms import SHOW_ARCHIVE, SHOW_INBOX, InboxFilterForm
from ebox.mailbox.models import Document
from ebox.mailbox.queries import InboxFilter, InboxPage, InboxRow, Scope
from ebox.mailbox.sender_marks import sender_mark
from ebox.mailbox.wording import current_language, file_size, line_labels
from ebox.mandates import services as mandate_services
from ebox.mandates.reading import mailbox_owner, reader_scope, reading_mandate, representative
from ebox.storage.services import open_content
from ebox.web import is_htmx, render_page_or_fragment

log = logging.getLogger(__name__)

bp = Blueprint("mailbox", __name__)

PDF = "application/pdf"
MAX_FILE_NAME_LENGTH = 150
VIEW_DOCUMENT = "document"

ACTION_LABELS = {
    services.ACTION_OPENED: _l("You opened the document"),
    services.ACTION_DOWNLOADED: _l("You downloaded the PDF"),
    services.ACTION_VIEWED_INLINE: _l("You viewed the PDF in the browser"),
    services.ACTION_HIDDEN: _l("You moved the document to the archive"),
    services.ACTION_UNHIDDEN: _l("You moved the document back to the inbox"),
    services.ACTION_RECEIPT_CONFIRMED: _l("You opened the registered letter and confirmed receipt"),
    services.ACTION_ATTACHMENT_DOWNLOADED: _l("You downloaded an attachment"),
}
# What a trusted person did for the citizen (reading only: they never archive).
REPRESENTATIVE_LABELS = {
    services.ACTION_OPENED: _l("%(name)s, your trusted person, opened the document"),
    services.ACTION_DOWNLOADED: _l("%(name)s, your trusted person, downloaded the PDF"),
    services.ACTION_VIEWED_INLINE: _l(
        "%(name)s, your trusted person, viewed the PDF in the browser"
    ),
    services.ACTION_RECEIPT_CONFIRMED: _l(
        "%(name)s, your trusted person, opened the registered letter and confirmed receipt"
    ),
    services.ACTION_ATTACHMENT_DOWNLOADED: _l(
        "%(name)s, your trusted person, downloaded an attachment"
    ),
}
# How the document page names an attachment's type (ebox.mailbox.content_rules allows these).
MEDIA_TYPE_LABELS = {
    PDF: _l("PDF document"),
    "image/png": _l("PNG image"),
    "image/jpeg": _l("JPEG image"),
    "text/csv": _l("CSV table"),
    "text/plain": _l("Text file"),
}
# A downloaded attachment is never run as a page, whatever a browser makes of it.
ATTACHMENT_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 7 else 1


# --- the inbox ---------------------------------------------------------------------------


@bp.get("/")
@login_required
def inbox() -> ResponseReturnValue:
    citizen, scope = mailbox_owner(), reader_scope()
    now = utcnow()
    senders = _senders_to_offer(citizen, scope, now=now)
    form = InboxFilterForm(request.args, senders or [])
    wanted = form.to_filter(page=_page_number())
    documents = queries.inbox_page(
        citizen, wanted, now=now, size=current_settings().inbox_page_size, scope=scope
    )
    return render_page_or_fragment(
        "mailbox/inbox.html",
        "mailbox/_document_list.html",
        form=form,
        wanted=wanted,
        documents=documents,
        filter_args=_filter_args(wanted),
        view=SHOW_ARCHIVE if wanted.show_hidden else SHOW_INBOX,
        has_documents=_has_documents(citizen, scope, senders, documents, now=now),
        count_limit=queries.COUNT_LIMIT,
    )


def _senders_to_offer(
    citizen: Citizen, scope: Scope, *, now: datetime
) -> list[tuple[int, str]] | None:
    """The senders of the filter form. htmx asks for the list alone, without the form: then
    they are read only to check a sender asked for (None: not read)."""
    if is_htmx() and not request.args.get("sender"):
        return None
    return queries.senders_of(citizen, now=now, scope=scope)


def _has_documents(
    citizen: Citizen,
    scope: Scope,
    senders: list[tuple[int, str]] | None,
    documents: InboxPage,
    *,
    now: datetime,
) -> bool:
    """Any available document, in either list: each has a sender, and a page shows some."""
    if senders is not None:
        return bool(senders)
    return documents.total > 0 or queries.has_documents(citizen, now=now, scope=scope)


def _filter_args(wanted: InboxFilter) -> dict[str, str]:
    """The query string of the current filter, for paging links (page number excluded)."""
    args = {"show": SHOW_ARCHIVE if wanted.show_hidden else ""}
    args.update(q=wanted.search, sender=str(wanted.sender_id or ""))
    args["unread"] = "y" if wanted.unread_only else ""
    return {name: value for name, value in args.items() if value}


# --- one document ------------------------------------------------------------------------


def _own_document(document_id: uuid.UUID) -> Document:
    """The available document of the mailbox being read, within the reader's scope, or 404:
    the same 404 for missing, not theirs, and outside a trusted person's mandate."""
    citizen = mailbox_owner()
    document = queries.find_document(document_id)
    if document is not None and document.recipient_national_number != citizen.national_number:
        log.warning(
            "citizen %s asked for document %s, not theirs", current_citizen().id, document_id
        )
        abort(404)
    if document is not None and not reader_scope().allows(document):
        log.warning(
            "citizen %s asked for document %s, outside the mandate",
            current_citizen().id,
            document_id,
        )
        abort(404)
    if document is None or not document.is_available(utcnow()):
        abort(404)
    return document


def _record(document: Document, action: str) -> None:
    services.record_access(
        document=document,
        citizen=mailbox_owner(),
        representative=representative(),
        action=action,
        ip_address=request.remote_addr,
        user_agent=request.user_agent.string,
    )


@bp.get("/documents/<uuid:document_id>")
@login_required
def document(document_id: uuid.UUID) -> ResponseReturnValue:
    """The document page. ?view=pdf, the citizen's own request, shows the PDF on the page too:
    htmx fetches just that frame, without JavaScript the page comes again with it."""
    document = _own_document(document_id)
    is_closed = services.needs_receipt_confirmation(document)
    show_pdf_here = request.args.get("view") == "pdf" and document.media_type == PDF
    if show_pdf_here and not is_closed and is_htmx():
        return render_template("mailbox/_pdf_frame.html", document=document)
    if not is_closed:
        services.mark_read(document=document)
    _record(document, services.ACTION_OPENED)
    return render_template(
        "mailbox/document.html",
        document=document,
        message_type_name=document.message_type.name_in(current_language()),
        is_closed=is_closed,
        is_pdf=document.media_type == PDF,
        show_pdf_here=show_pdf_here,
        view=VIEW_DOCUMENT,
        media_type_labels=MEDIA_TYPE_LABELS,
    )


@bp.post("/documents/<uuid:document_id>/receipt")
@login_required
def confirm_receipt(document_id: uuid.UUID) -> ResponseReturnValue:
    document = _own_document(document_id)  # a holder reaches it only if registered mail is allowed
    if document.is_registered and services.confirm_receipt(
        document=document, authentication=_authentication(), representative=_representative()
    ):
        _record(document, services.ACTION_RECEIPT_CONFIRMED)
    return redirect(url_for(".document", document_id=document.id), 303)


def _representative() -> Representative | None:
    """The trusted person opening the letter for its recipient, for the evidence of handover."""
    mandate = reading_mandate()
    return None if mandate is None else mandate_services.representative_in(mandate)


def _authentication() -> RecipientAuthentication:
    """How the citizen behind this session logged in, for the evidence of handover."""
    web_session: WebSession = g.web_session
    return RecipientAuthentication(
        identity_provider=web_session.identity_provider,
        authn_context=web_session.authn_context,
        authenticated_at=web_session.authenticated_at,
        assertion_id=web_session.assertion_id,
    )


@bp.get("/documents/<uuid:document_id>/content")
@login_required
def content(document_id: uuid.UUID) -> ResponseReturnValue:
    document = _own_document(document_id)
    if services.needs_receipt_confirmation(document):
        return render_template("mailbox/receipt_required.html", document=document), 403
    if not (document.storage_key and document.content_key and document.content_key_id):
        abort(404)
    stream = open_content(
        storage_key=document.storage_key,
        content_key=document.content_key,
        content_key_id=document.content_key_id,
    )
    is_inline = request.args.get("disposition") == "inline" and document.media_type == PDF
    services.mark_read(document=document)
    action = services.ACTION_VIEWED_INLINE if is_inline else services.ACTION_DOWNLOADED
    _record(document, action)
    # Only a PDF is served as what it is; anything else is opaque bytes to save, never to render.
    mimetype = PDF if document.media_type == PDF else "application/octet-stream"
    return _file_response(stream, document.file_name, mimetype=mimetype, is_inline=is_inline)


@bp.get("/documents/<uuid:document_id>/attachments/<int:position>")
@login_required
def attachment(document_id: uuid.UUID, position: int) -> ResponseReturnValue:
    """An attachment, always as a download: the same rules as the document's own content."""
    document = _own_document(document_id)
    if services.needs_receipt_confirmation(document):
        return render_template("mailbox/receipt_required.html", document=document), 403
    found = queries.find_attachment(document, position)
    if found is None or not (found.storage_key and found.content_key and found.content_key_id):
        abort(404)
    stream = open_content(
        storage_key=found.storage_key,
        content_key=found.content_key,
        content_key_id=found.content_key_id,
    )
    services.mark_read(document=document)
    _record(document, services.ACTION_ATTACHMENT_DOWNLOADED)
    # Allowed types only (checked at publication), and never rendered here: a download.
    mimetype = (
        found.media_type if found.media_type in MEDIA_TYPE_LABELS else "application/octet-stream"
    )
    response = _file_response(stream, found.file_name, mimetype=mimetype, is_inline=False)
    response.headers["Content-Security-Policy"] = ATTACHMENT_CONTENT_SECURITY_POLICY
    return response


def _file_response(
    stream: Any, file_name: str | None, *, mimetype: str, is_inline: bool
) -> Response:
    response = send_file(
        stream,
        mimetype=mimetype,
        as_attachment=not is_inline,
        download_name=download_name(file_name),
        conditional=False,
        etag=False,
    )
    if response.content_length is None:
        stream.seek(0, 2)
        response.content_length = stream.tell()
        stream.seek(0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def download_name(file_name: str | None) -> str:
    """A file name safe to put in Content-Disposition: no path, no control or quote characters."""
    name = (file_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if _is_unsafe(char) else char for char in name).strip(" ._")
    if len(name) > MAX_FILE_NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        keep = MAX_FILE_NAME_LENGTH - len(extension) - 1
        short = dot and len(extension) <= 8
        name = f"{stem[:keep]}.{extension}" if short else name[:MAX_FILE_NAME_LENGTH]
    return name or "document.pdf"


def _is_unsafe(char: str) -> bool:
    return not char.isprintable() or char in '"<>:*?|'


# --- archive ------------------------------------------------------------------------------


@bp.post("/documents/<uuid:document_id>/hide")
@login_required
def hide(document_id: uuid.UUID) -> ResponseReturnValue:
    _owner_only()
    document = _own_document(document_id)
    services.hide_document(document=document)
    _record(document, services.ACTION_HIDDEN)
    return _after_archive_change(
        document, _("“%(title)s” is now in the archive.", title=document.title)
    )


@bp.post("/documents/<uuid:document_id>/unhide")
@login_required
def unhide(document_id: uuid.UUID) -> ResponseReturnValue:
    _owner_only()
    document = _own_document(document_id)
    services.unhide_document(document=document)
    _record(document, services.ACTION_UNHIDDEN)
    message = _("“%(title)s” is back in the inbox.", title=document.title)
    return _after_archive_change(document, message)


def _owner_only() -> None:
    """A trusted person reads; the archive stays the owner's to arrange."""
    if reading_mandate() is not None:
        abort(403)


def _after_archive_change(document: Document, message: str) -> ResponseReturnValue:
    """htmx swaps the row (or the button on the document page); without JS: post/redirect/get."""
    view = request.form.get("view", SHOW_INBOX)
    if view not in (SHOW_INBOX, SHOW_ARCHIVE, VIEW_DOCUMENT):
        view = SHOW_INBOX
    back = _local_path(request.form.get("next"))
    row = InboxRow.of(document)
    context = {"document": row, "view": view, "back": back, "message": message}
    if not is_htmx():
        flash(message, "success")
        return redirect(back, 303)
    if view == VIEW_DOCUMENT:
        return render_template("mailbox/_archive_toggle.html", **context)
    if (document.hidden_at is not None) == (view == SHOW_ARCHIVE):
        return render_template("mailbox/_document_row.html", **context)
    return render_template("mailbox/_moved_row.html", **context)


def _local_path(raw: str | None) -> str:
    """Where to go back to: a path of this site only, never another site (open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//"):
        return url_for(".inbox")
    if "\\" in raw or any(ord(char) < 0x21 or ord(char) == 0x7F for char in raw):
        return url_for(".inbox")
    return raw


# --- access history -----------------------------------------------------------------------


@bp.get("/history")
@login_required
def history() -> ResponseReturnValue:
    page = queries.access_history(
        current_citizen(), number=_page_number(), size=current_settings().inbox_page_size
    )
    return render_template(
        "mailbox/history.html",
        page=page,
        now=utcnow(),
        labels=ACTION_LABELS,
        representative_labels=REPRESENTATIVE_LABELS,
    )


bp.add_app_template_global(sender_mark, "sender_mark")
bp.add_app_template_global(line_labels, "line_labels")
bp.add_app_template_filter(file_size, "file_size")
