"""Citizens, their web sessions and the SAML assertions already used."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model

# What is kept of a browser's User-Agent header and address (sessions, the access history).
MAX_USER_AGENT_LENGTH = 300
MAX_IP_LENGTH = 45


class Citizen(Model):
    """A citizen who has logged in at least once. Documents may wait for one who has not."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(String(11), unique=True)
    given_name: Mapped[str] = mapped_column(String(200), default="")
    surname: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(2), default="nl")
    email: Mapped[str | None] = mapped_column(String(254))
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conditions_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_electronic_only: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The daily e-mail alert announced documents published up to alerted_news_until and warned
    # of expiries up to alerted_expiry_until: the next alert starts there (ebox.alerts).
    alerted_news_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alerted_expiry_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Reminders named the documents published up to alerted_reminder_until that were unread
    # EBOX_REMINDER_DAYS later; the citizen may turn them off in the profile.
    alerted_reminder_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wants_reminders: Mapped[bool] = mapped_column(default=True, server_default=true())

    @property
    def is_activated(self) -> bool:
        """Activated: conditions accepted and an e-mail address confirmed."""
        return self.conditions_accepted_at is not None and self.email_confirmed_at is not None


class WebSession(Model):
    """A logged-in browser. The cookie holds only this id, so logout and timeouts are real."""

    __tablename__ = "web_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The login behind the session, as the identity provider stated it (registered mail's
    # evidence of handover names it).
    identity_provider: Mapped[str] = mapped_column(String(500), default="")
    authn_context: Mapped[str] = mapped_column(String(500), default="")
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assertion_id: Mapped[str] = mapped_column(String(256), default="")
    # The browser that logged in, shown to the citizen among their open sessions.
    user_agent: Mapped[str | None] = mapped_column(String(MAX_USER_AGENT_LENGTH))
    ip_address: Mapped[str | None] = mapped_column(String(MAX_IP_LENGTH))

    def is_open(self, now: datetime, *, idle: timedelta, lifetime: timedelta) -> bool:
        """Not logged out, not idle too long, and not older than a session may live."""
        return (
            self.ended_at is None
            and now - self.last_seen_at <= idle
            and now - self.created_at <= lifetime
        )


class SeenAssertion(Model):
    """SAML assertion ids already accepted: a second use of one is a replay."""

    __tablename__ = "saml_seen_assertions"

    assertion_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Kept until the assertion could no longer be accepted anyway.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
