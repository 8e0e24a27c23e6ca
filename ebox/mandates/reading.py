"""Reading another citizen's eBox under a mandate.

The holder chooses "read for <name>"; the session remembers which mandate, and every request
checks it again (still the holder's, still active, not ended by either side): the moment it is
not, the session is back on the holder's own eBox and the owner's documents answer 404.
Only the mailbox (the list, a document, its content, a registered letter if allowed) follows
the mandate; history, profile and mandates stay the holder's own.
"""

from __future__ import annotations

import uuid

from flask import g, session

from ebox.accounts.models import Citizen
from ebox.accounts.sessions import current_citizen
from ebox.db_types import utcnow
from ebox.mailbox.queries import EVERYTHING, Scope
from ebox.mandates import services
from ebox.mandates.models import Mandate

SESSION_KEY = "reading_for"


def start(mandate: Mandate) -> None:
    session[SESSION_KEY] = str(mandate.id)
    g.pop("reading_mandate", None)


def stop() -> None:
    session.pop(SESSION_KEY, None)
    g.pop("reading_mandate", None)


def forget() -> None:
    g.pop("reading_mandate", None)


def reading_mandate() -> Mandate | None:
    """The mandate the logged-in citizen reads under now, or None (their own eBox)."""
    if "reading_mandate" in g:
        return g.reading_mandate
    mandate = None
    raw = session.get(SESSION_KEY)
    citizen = g.get("citizen")
    if raw is not None and citizen is not None:
        try:
            mandate = services.active_mandate(citizen, uuid.UUID(str(raw)), utcnow())
        except ValueError:
            mandate = None
        if mandate is None:
            session.pop(SESSION_KEY, None)  # ended, expired or never theirs
    g.reading_mandate = mandate
    return mandate


def mailbox_owner() -> Citizen:
    """Whose documents the mailbox shows: the mandate's owner, or the citizen."""
    mandate = reading_mandate()
    return mandate.owner if mandate is not None else current_citizen()


def reader_scope() -> Scope:
    mandate = reading_mandate()
    return services.scope_of(mandate) if mandate is not None else EVERYTHING


def representative() -> Citizen | None:
    """The holder when reading for someone else, None when the citizen reads their own."""
    return current_citizen() if reading_mandate() is not None else None
