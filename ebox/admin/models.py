"""Who is support staff, and with which role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ebox.db_types import UTCDateTime, utcnow
from ebox.extensions import Model

ROLE_SUPPORT = "support"  # reads applications, senders, delivery status and audit
ROLE_ADMIN = "admin"  # also approves, rejects, suspends and manages certificates
ROLES = (ROLE_SUPPORT, ROLE_ADMIN)


class StaffMember(Model):
    """A person who logs in through the same federation and may use /admin.

    Managed only from the command line (`flask --app app ebox staff ...`), so that no web page
    can make anyone staff.
    """

    __tablename__ = "staff_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(String(11), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN
