"""What a push says: counts only, in the citizen's language. No sender, no title, nothing of a
document: a notification shows on a locked screen, and the push service relays it (encrypted,
but still). "You have 2 new documents in your eBox."
"""

from __future__ import annotations

import json

from flask_babel import force_locale, ngettext

from ebox.alerts.queries import News

TITLE = "eBox"


def push_payload(news: News, language: str) -> bytes:
    """The JSON the service worker shows: {"title": "eBox", "body": "..."}."""
    new = sum(count for _, count in news.new)
    reminders = sum(count for _, count in news.reminders)
    expiring = sum(count for _, count in news.expiring)
    with force_locale(language):
        lines = []
        if new:
            lines.append(
                ngettext(
                    "You have %(num)d new document in your eBox.",
                    "You have %(num)d new documents in your eBox.",
                    new,
                )
            )
        if reminders:
            lines.append(
                ngettext(
                    "%(num)d document is still unread.",
                    "%(num)d documents are still unread.",
                    reminders,
                )
            )
        if expiring:
            lines.append(
                ngettext(
                    "%(num)d unread document will soon be deleted.",
                    "%(num)d unread documents will soon be deleted.",
                    expiring,
                )
            )
    body = " ".join(str(line) for line in lines)
    return json.dumps({"title": TITLE, "body": body}, ensure_ascii=False).encode("utf-8")
