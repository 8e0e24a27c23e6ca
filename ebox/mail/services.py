"""Outgoing e-mail: compose a message (ebox.mail.messages), then deliver it by SMTP
(ebox.mail.smtp) or capture it on disk.

With EBOX_SMTP_URL empty (the embedded default) every message is written as an .eml file under
<instance>/mail, where the demo mail viewer shows it. Nothing here ever logs a body: e-mails
carry one-time codes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from pathlib import Path

from ebox.config import Settings, current_settings
from ebox.db_types import utcnow
from ebox.mail.messages import compose_message
from ebox.mail.smtp import (
    MailDeliveryError,
    MailResult,
    OutgoingMail,
    SmtpPool,
    mask_address,
    parse_smtp_url,
)
from ebox.transactions import after_commit

log = logging.getLogger(__name__)

CAPTURE_FOLDER = "mail"


def send_email(
    *, to: str, subject: str, text: str, html: str | None = None, language: str | None = None
) -> None:
    """Deliver one message now. Raises MailDeliveryError when the mail server refuses it."""
    with Mailer(current_settings()) as mailer:
        mailer.send(to=to, subject=subject, text=text, html=html, language=language)


class Mailer:
    """Delivers messages over up to `connections` SMTP connections, opened at the first message
    and kept until close() (or captures them on disk when EBOX_SMTP_URL is empty). Use as a
    context manager; not thread-safe. A broken connection is replaced by a new one."""

    def __init__(self, settings: Settings, *, connections: int = 1) -> None:
        self.settings = settings
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self._pool = SmtpPool(self.target, settings.mail_from, connections) if self.target else None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        language: str | None = None,
    ) -> None:
        """Deliver one message; raises MailDeliveryError if it was not accepted."""
        mail = self.compose(key=0, to=to, subject=subject, text=text, html=html, language=language)
        [result] = self.send_all([mail])
        if result.error is not None:
            raise result.error
        log.info("mail to %s delivered", mask_address(to))

    def compose(
        self,
        *,
        key: int,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        language: str | None = None,
    ) -> OutgoingMail:
        data = compose_message(
            sender=self.settings.mail_from,
            to=to,
            subject=subject,
            text=text,
            html=html,
            language=language,
        )
        return OutgoingMail(key=key, to=to, data=data)

    def send_all(self, mails: Iterable[OutgoingMail]) -> list[MailResult]:
        """Deliver every message; one result each, in no particular order. Never raises for a
        message the server refused or a connection that broke: its result says so. The
        messages are taken from `mails` as connections become free, so a generator that
        composes them overlaps with the server's work."""
        if self._pool is None:
            folder = self.settings.instance_path / CAPTURE_FOLDER
            return [_capture_result(mail, folder) for mail in mails]
        return self._pool.deliver(iter(mails))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def queue_email(
    *, to: str, subject: str, text: str, html: str | None = None, language: str | None = None
) -> None:
    """Send once the current transaction has committed; never for a change that rolled back."""
    after_commit(
        lambda: send_email(to=to, subject=subject, text=text, html=html, language=language)
    )


def _capture_result(mail: OutgoingMail, folder: Path) -> MailResult:
    try:
        _capture(mail.data, folder)
    except MailDeliveryError as exc:
        return MailResult(mail.key, exc)
    return MailResult(mail.key, None)


def _capture(data: bytes, folder: Path) -> Path:
    """Write the message as <UTC time>-<random>.eml; written aside, then renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S-%f}-{secrets.token_hex(4)}.eml"
    partial = folder / f".{name}.part"
    try:
        partial.write_bytes(data)
        partial.replace(folder / name)
    except OSError as exc:
        log.warning("mail capture into %s failed: %s", folder, type(exc).__name__)
        raise MailDeliveryError(f"The message could not be written to {folder}") from exc
    log.info("mail captured as %s", name)
    return folder / name
