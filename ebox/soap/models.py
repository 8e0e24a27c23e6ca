"""Signed SOAP requests already accepted, kept for as long as they could be replayed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime
from ebox.extensions import Model


class SeenRequest(Model):
    """The replay key of a signed request that passed WS-Security (ebox.soap.wssecurity): a
    second request with the same key is a replay. Recorded in the request's own transaction."""

    __tablename__ = "wss_seen_requests"

    # Hex SHA-256 of the signed Timestamp's and Body's digests.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The end of the window in which the request could be accepted, and a second more; the
    # periodic purge deletes the row after that.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
