"""The inbox filter: a GET form, so the filtered list has a URL of its own (and no CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, Form, RadioField, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from ebox.mailbox.queries import MAX_SEARCH_LENGTH, InboxFilter

SHOW_INBOX = "inbox"
SHOW_ARCHIVE = "archive"


class InboxFilterForm(Form):
    show = RadioField(
        _l("Show"),
        choices=[SelectChoice(SHOW_INBOX, _l("Inbox")), SelectChoice(SHOW_ARCHIVE, _l("Archive"))],
        default=SHOW_INBOX,
    )
    q = SearchField(_l("Search in titles"), validators=[Optional(), Length(max=MAX_SEARCH_LENGTH)])
    sender = SelectField(_l("Sender"), validate_choice=True)
    unread = BooleanField(_l("Unread only"))

    def __init__(self, args: MultiDict[str, str], senders: list[tuple[int, str]]) -> None:
        super().__init__(args)
        choices = [SelectChoice("", _l("All senders"))]
        choices += [SelectChoice(str(sender_id), name) for sender_id, name in senders]
        self.sender.choices = choices

    def to_filter(self, page: int) -> InboxFilter:
        """The filter asked for; a hostile or stale value is ignored, never an error page."""
        self.validate()
        sender = self.sender.data if not self.sender.errors else ""
        search = _printable(self.q.data or "").strip() if not self.q.errors else ""
        return InboxFilter(
            unread_only=bool(self.unread.data),
            sender_id=int(sender) if sender else None,
            search=search,
            show_hidden=self.show.data == SHOW_ARCHIVE and not self.show.errors,
            page=page,
        )


def _printable(text: str) -> str:
    # PostgreSQL refuses NUL in text, and no title holds control characters anyway.
    return "".join(char for char in text if char.isprintable())
