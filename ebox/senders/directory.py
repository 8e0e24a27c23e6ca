"""What every publication looks up about its sender: who signs with a certificate, and the
sender's message types. Remembered for REMEMBERED_FOR, so that most requests read neither.

Only an answer that lets a request through is remembered (a registered certificate that is not
revoked, of an active sender; a message type that exists): a refusal is looked up again every
time, so a certificate just registered or a sender just reactivated is accepted at once. Every
change is seen quickly:

- in the process that makes it, at once: any flush, commit or statement of a session that
  touches senders, their certificates or message types (and any statement written as text)
  forgets everything remembered;
- in every other process, within REMEMBERED_FOR: the longest a revoked certificate or a suspended
  sender can still be accepted there.

What is remembered are column values, never ORM objects (sessions are per request and per
thread): each request gets its own instances, attached to its session without a query.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import TextClause

from ebox.extensions import Model, db
from ebox.senders.models import MessageType, Sender, SenderCertificate

REMEMBERED_FOR = timedelta(seconds=5)

_WATCHED = (Sender, SenderCertificate, MessageType)
_WATCHED_TABLES = frozenset(model.__tablename__ for model in _WATCHED)
_CHANGED = "ebox.senders.directory.changed"  # session.info: this transaction changed senders

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Signer:
    """A registered certificate (its sender loaded with it) and what its X.509 says."""

    certificate: SenderCertificate
    public_key: CertificatePublicKeyTypes
    valid_from: datetime  # the X.509 validity, beside the one recorded with the certificate
    valid_until: datetime


def find_signer(der: bytes, *, now: datetime) -> Signer | None:
    """The registered certificate whose DER encoding is der, or None if there is none.

    Raises ValueError when der is not an X.509 certificate. Whether it may sign now (revoked,
    expired, sender suspended) is the caller's to decide: every field is there to do it.
    """
    fingerprint = hashlib.sha256(der).hexdigest()
    remembered = _MEMORY.recall(("signer", fingerprint), now)
    if remembered is not None:
        return _signer_from(remembered)
    x509.load_der_x509_certificate(der)  # garbage is not "unknown": it is no certificate at all
    return _look_up_signer(fingerprint, now)


def find_signer_by_fingerprint(fingerprint: str, *, now: datetime) -> Signer | None:
    """The registered certificate with this SHA-256 fingerprint (hex), or None: what an access
    token of the REST API names, checked again on every call as find_signer's answer is."""
    remembered = _MEMORY.recall(("signer", fingerprint), now)
    if remembered is not None:
        return _signer_from(remembered)
    return _look_up_signer(fingerprint, now)


def _look_up_signer(fingerprint: str, now: datetime) -> Signer | None:
    generation = _MEMORY.generation
    # As the database has them now, even if the session already held them.
    record = db.session.scalar(
        select(SenderCertificate)
        .options(joinedload(SenderCertificate.sender))
        .where(SenderCertificate.fingerprint_sha256 == fingerprint)
        .execution_options(populate_existing=True)
    )
    if record is None:
        return None
    certificate = x509.load_pem_x509_certificate(record.pem.encode("ascii"))
    signer = Signer(
        record,
        certificate.public_key(),
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
    )
    if record.revoked_at is None and record.sender.is_active:
        _MEMORY.remember(("signer", fingerprint), _signer_values(signer), generation, now)
    return signer


def find_message_type(sender_id: int, code: str, *, now: datetime) -> MessageType | None:
    """The sender's message type with this code, or None."""
    remembered = _MEMORY.recall(("message type", sender_id, code), now)
    if remembered is not None:
        return _attached(MessageType, remembered)
    generation = _MEMORY.generation
    message_type = db.session.scalars(
        select(MessageType)
        .where(MessageType.sender_id == sender_id, MessageType.code == code)
        .execution_options(populate_existing=True)
    ).first()
    if message_type is not None:
        values = _column_values(message_type)
        _MEMORY.remember(("message type", sender_id, code), values, generation, now)
    return message_type


def forget_everything() -> None:
    """Forget every answer remembered in this process (a change was made here)."""
    _MEMORY.forget()


# --- what is remembered -----------------------------------------------------------------


class _Memory:
    """Answers by key, each with the moment it was looked up; shared by the threads of a process.

    `generation` counts the times everything was forgotten: an answer looked up while a change
    was being made (read before it, stored after it) is not kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[object, ...], tuple[datetime, Any]] = {}
        self.generation = 0

    def recall(self, key: tuple[object, ...], now: datetime) -> Any:
        found = self._answers.get(_scoped(key))
        if found is None:
            return None
        looked_up_at, value = found
        # A clock that went back counts as expired, like one gone past the time.
        if not timedelta(0) <= now - looked_up_at < REMEMBERED_FOR:
            return None
        return value

    def remember(self, key: tuple[object, ...], value: Any, generation: int, now: datetime) -> None:
        with self._lock:
            if generation == self.generation:
                self._answers[_scoped(key)] = (now, value)

    def forget(self) -> None:
        with self._lock:
            self.generation += 1
            self._answers.clear()


def _scoped(key: tuple[object, ...]) -> tuple[object, ...]:
    """Answers belong to a database: one process may serve apps on several (the tests do)."""
    return (db.engine.url, *key)


_MEMORY = _Memory()


def _column_values(instance: Model) -> dict[str, Any]:
    return {column.key: getattr(instance, column.key) for column in inspect(type(instance)).columns}


def _signer_values(signer: Signer) -> dict[str, Any]:
    return {
        "certificate": _column_values(signer.certificate),
        "sender": _column_values(signer.certificate.sender),
        "public_key": signer.public_key,
        "valid_from": signer.valid_from,
        "valid_until": signer.valid_until,
    }


def _signer_from(values: dict[str, Any]) -> Signer:
    sender = _attached(Sender, values["sender"])
    certificate = _attached(SenderCertificate, values["certificate"])
    # As if loaded with it: setting it the usual way would mark the certificate changed.
    set_committed_value(certificate, "sender", sender)
    return Signer(certificate, values["public_key"], values["valid_from"], values["valid_until"])


def _attached(model: type[M], values: dict[str, Any]) -> M:
    """An instance of model with these column values in the session, as if just loaded.

    The session's own instance wins when it already holds that row.
    """
    session = db.session()
    present = session.identity_map.get(session.identity_key(model, values["id"]))
    if present is not None:
        return present
    instance = model(**values)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


# --- forgetting on change ---------------------------------------------------------------


def _touches_senders(session: Session) -> bool:
    changed = (*session.new, *session.dirty, *session.deleted)
    return any(isinstance(instance, _WATCHED) for instance in changed)


@event.listens_for(Session, "after_flush")
def _forget_after_flush(session: Session, _flush_context: Any) -> None:
    if _touches_senders(session):
        _changed(session)


@event.listens_for(Session, "do_orm_execute")
def _forget_after_statement(state: Any) -> None:
    statement = state.statement
    table = getattr(statement, "table", None)
    is_write = state.is_insert or state.is_update or state.is_delete
    if _may_write(statement) or (is_write and getattr(table, "name", None) in _WATCHED_TABLES):
        _changed(state.session)


def _may_write(statement: object) -> bool:
    """A statement written as text could change anything, unless it only reads."""
    if not isinstance(statement, TextClause):
        return False
    return statement.text.lstrip()[:6].upper() != "SELECT"


@event.listens_for(Session, "after_commit")
def _forget_after_commit(session: Session) -> None:
    """Forget again once committed: a lookup between the flush and the commit read the old rows."""
    if session.info.pop(_CHANGED, False):
        _MEMORY.forget()


def _changed(session: Session) -> None:
    session.info[_CHANGED] = True
    _MEMORY.forget()
