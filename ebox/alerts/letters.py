"""The alert e-mail: counts and senders, never a document's content, in the citizen's language,
with a text and an HTML part (templates/mail/alert.*).

Rendering both templates costs more than everything else an alert takes in the worker, and
most alerts of a day say the same thing in the same language to different people: "Federal
Pension Service: 1 document". So each (language, news) is rendered once, with a mark where
the citizen's name goes, and kept (FRAMES_KEPT at most per process); an alert is that frame
with the name put in, escaped for the HTML part.
"""

from __future__ import annotations

from collections import OrderedDict

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from markupsafe import escape

from ebox.alerts.queries import Alert, News, Recipient
from ebox.mail.messages import RenderedEmail, mail_templates
from ebox.mail.services import Mailer
from ebox.mail.smtp import OutgoingMail

# By (has new documents, has documents soon deleted); reminders alone have their own.
SUBJECTS = {
    (True, True): _l("News and documents soon deleted in your eBox"),
    (True, False): _l("You have new documents in your eBox"),
    (False, True): _l("Unread documents in your eBox will soon be deleted"),
    (False, False): _l("Documents in your eBox are still unread"),
}
NAME = "\x00given name\x00"  # where a frame takes the citizen's name; no name contains it
FRAMES_KEPT = 2_000  # a few kB each


class AlertLetters:
    """Writes alert e-mails for one mailer (one sending job)."""

    def __init__(self, mailer: Mailer, *, portal_url: str, reminder_days: int) -> None:
        self.mailer = mailer
        self.portal_url = portal_url
        self.reminder_days = reminder_days
        self.frames: OrderedDict[tuple[object, ...], RenderedEmail] = (
            current_app.extensions.setdefault("ebox.alert_frames", OrderedDict())
        )

    def compose(self, alert: Alert) -> OutgoingMail:
        recipient = alert.recipient
        message = self.render(recipient, alert.news)
        return self.mailer.compose(
            key=alert.delivery_id,
            to=recipient.email,
            subject=message.subject,
            text=message.text,
            html=message.html,
            language=recipient.language,
        )

    def render(self, recipient: Recipient, news: News) -> RenderedEmail:
        name = recipient.given_name.replace("\x00", "")
        frame = self._frame(recipient.language, bool(name), news)
        return RenderedEmail(
            subject=frame.subject,
            text=frame.text.replace(NAME, name),
            html=frame.html.replace(NAME, str(escape(name))),
        )

    def _frame(self, language: str, named: bool, news: News) -> RenderedEmail:
        key = (self.portal_url, self.reminder_days, language, named, news)
        frame = self.frames.get(key)
        if frame is None:
            frame = mail_templates("alert", language).render(
                subject=_subject(language, news),
                citizen=Recipient(email="", language=language, given_name=NAME if named else ""),
                news=news,
                portal_url=self.portal_url,
                reminder_days=self.reminder_days,
            )
            self.frames[key] = frame
            if len(self.frames) > FRAMES_KEPT:
                self.frames.popitem(last=False)
        return frame


def _subject(language: str, news: News) -> str:
    with force_locale(language):
        return str(SUBJECTS[(bool(news.new), bool(news.expiring))])
