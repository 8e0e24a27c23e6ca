"""Staff: who they are (changed only from the command line) and what they look up; every change
and every lookup is audited."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from ebox import national_number
from ebox.admin import queries
from ebox.admin.models import ROLES, StaffMember
from ebox.audit.services import Actor, record_event
from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.national_number import mask

# A removed member keeps its row, so that the applications it decided still name it (a foreign
# key); this role gives no access to anything.
ROLE_REMOVED = "removed"
MAX_REASON_LENGTH = 500
# Eleven digits, perhaps written with the usual separators, and not part of a longer number.
_NUMBER_IN_TEXT = re.compile(r"(?<!\d)\d(?:[\s.\-]?\d){10}(?!\d)")


class StaffError(ValueError):
    """The change cannot be made; the message says why."""


@dataclass(frozen=True)
class StaffChange:
    member: StaffMember
    changed: bool
    message: str


def actor_for(member: StaffMember) -> Actor:
    return Actor("staff", str(member.id))


def find_staff(number: str) -> StaffMember | None:
    """The staff member with this national number, removed ones included."""
    return db.session.scalars(
        select(StaffMember).where(StaffMember.national_number == number)
    ).first()


def active_staff(number: str) -> StaffMember | None:
    """The staff member who may use /admin now, or None."""
    member = find_staff(number)
    return member if member is not None and member.role in ROLES else None


def add_staff(*, raw_number: str, role: str, actor: Actor) -> StaffChange:
    """Make someone staff, or change their role. Running it twice changes nothing."""
    if role not in ROLES:
        raise StaffError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    try:
        number = national_number.normalise(raw_number)
    except national_number.InvalidNationalNumber as exc:
        raise StaffError(str(exc)) from exc
    masked = national_number.mask(number)
    member = find_staff(number)
    if member is not None and member.role == role:
        return StaffChange(member, False, f"{masked} is already {role}; nothing changed.")
    if member is not None and member.role == ROLE_REMOVED:
        member.role = role
        db.session.flush()
        details = {"national_number": masked, "role": role}
        record_event(actor, "staff.added", "staff_member", member.id, details)
        return StaffChange(member, True, f"{masked} is staff again, as {role}.")
    if member is not None:
        previous = member.role
        member.role = role
        db.session.flush()
        details = {"national_number": masked, "role": role, "previous_role": previous}
        record_event(actor, "staff.role_changed", "staff_member", member.id, details)
        return StaffChange(member, True, f"{masked} is now {role} (was {previous}).")
    member = StaffMember(national_number=number, role=role)
    db.session.add(member)
    db.session.flush()
    details = {"national_number": masked, "role": role}
    record_event(actor, "staff.added", "staff_member", member.id, details)
    return StaffChange(member, True, f"{masked} is now {role}.")


def remove_staff(*, raw_number: str, actor: Actor) -> str:
    try:
        number = national_number.normalise(raw_number)
    except national_number.InvalidNationalNumber as exc:
        raise StaffError(str(exc)) from exc
    masked = national_number.mask(number)
    member = active_staff(number)
    if member is None:
        raise StaffError(f"{masked} is not staff.")
    details = {"national_number": masked, "role": member.role}
    member.role = ROLE_REMOVED
    db.session.flush()
    record_event(actor, "staff.removed", "staff_member", member.id, details)
    return f"{masked} is no longer staff."


def list_staff() -> list[StaffMember]:
    """Members who may use /admin now, oldest first."""
    query = select(StaffMember).where(StaffMember.role.in_(ROLES)).order_by(StaffMember.added_at)
    return list(db.session.scalars(query))


def look_up_citizen(*, national_number: str, reason: str, actor: Actor) -> queries.CitizenOverview:
    """What staff may know of a citizen's eBox. Audited with the reason, the number masked."""
    overview = queries.citizen_overview(national_number, now=utcnow())
    masked = mask(national_number)
    details = {"national_number": masked, "reason": _masked_numbers(reason)[:MAX_REASON_LENGTH]}
    if overview.account is not None:
        record_event(actor, "citizen.looked_up", "citizen", overview.account.citizen_id, details)
    else:  # never logged in: no citizen row to name
        record_event(actor, "citizen.looked_up", "national_number", masked, details)
    return overview


def look_up_delivery_by_id(*, document_id: uuid.UUID, actor: Actor) -> list[queries.DeliveryStatus]:
    results = queries.delivery_by_id(document_id)
    record_event(actor, "delivery.looked_up", "document", document_id, {"found": len(results)})
    return results


def look_up_delivery_by_ticket(
    *, sender_id: int, ticket: str, sequence: int | None, actor: Actor
) -> list[queries.DeliveryStatus]:
    """The sender's MessageID names no person, so the audit keeps it whole."""
    results = queries.delivery_by_ticket(sender_id=sender_id, ticket=ticket, sequence=sequence)
    details = {"ticket": ticket, "sequence": sequence, "found": len(results)}
    record_event(actor, "delivery.looked_up", "sender", sender_id, details)
    return results


def _masked_numbers(text: str) -> str:
    """A national number typed into a reason is masked like every other one in the audit log."""
    return _NUMBER_IN_TEXT.sub(lambda found: mask(re.sub(r"\D", "", found.group())), text)
