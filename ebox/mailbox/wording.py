"""How the mailbox's pages write dates, sizes and the words of an inbox line, in the citizen's
language: template helpers, each looked up once per language where a page uses it many times."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from babel import dates as babel_dates
from flask_babel import format_decimal, get_locale, get_timezone
from flask_babel import gettext as _


def current_language() -> str:
    return str(get_locale() or "nl")


@dataclass(frozen=True)
class LineLabels:
    """What a line of the inbox writes, in one language and time zone. received and
    deleted_on keep their %(date)s for the line to fill in with day()."""

    language: str
    zone: tzinfo
    new: str
    registered: str
    received: str
    deleted_on: str
    to_archive: str
    to_inbox: str

    def day(self, moment: datetime) -> str:
        """The day of a moment, as dateformat("medium") writes it."""
        return _medium_date(moment.astimezone(self.zone).date(), self.language)


def line_labels() -> LineLabels:
    """The words of a line in the citizen's language, looked up once a language: four
    translations and two dates a line cost a page of twenty lines a millisecond and more."""
    return _line_labels(current_language(), get_timezone())


@functools.lru_cache(maxsize=16)
def _line_labels(language: str, zone: tzinfo) -> LineLabels:
    # Called in a request of that language: gettext translates into it.
    return LineLabels(
        language=language,
        zone=zone,
        new=_("New"),
        registered=_("Registered mail"),
        received=_("Received %(date)s"),
        deleted_on=_("Deleted on %(date)s"),
        to_archive=_("Move to the archive"),
        to_inbox=_("Move back to the inbox"),
    )


@functools.lru_cache(maxsize=8192)
def _medium_date(day: date, language: str) -> str:
    # The same few thousand days recur in every mailbox: each is formatted once a language.
    return babel_dates.format_date(day, "medium", locale=language)


def file_size(size_bytes: int) -> str:
    """A size in the citizen's number format: 512 bytes, 12.4 kB, 1.2 MB."""
    if size_bytes < 1024:
        return _("%(count)s bytes", count=format_decimal(size_bytes))
    if size_bytes < 1024 * 1024:
        return _("%(count)s kB", count=format_decimal(round(size_bytes / 1024, 1)))
    return _("%(count)s MB", count=format_decimal(round(size_bytes / 1024 / 1024, 1)))
