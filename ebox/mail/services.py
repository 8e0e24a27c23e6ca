"""Outgoing e-mail: build a message, then deliver it by SMTP or capture it on disk.

With EBOX_SMTP_URL empty (the embedded default) every message is written as an .eml file under
<instance>/mail, where the demo mail viewer shows it. Nothing here ever logs a body: e-mails
carry one-time codes.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import render_template
from flask_babel import force_locale

from ebox.config import Settings, current_settings
from ebox.db_types import utcnow
from ebox.transactions import after_commit

log = logging.getLogger(__name__)

# A stuck mail server must not hold a web request (or a worker) for long.
SMTP_TIMEOUT_SECONDS = 10
CAPTURE_FOLDER = "mail"


class MailDeliveryError(RuntimeError):
    """The message could not be handed to the mail server; the message says why.

    may_have_been_delivered: the connection broke while the message was being sent, so the
    server may have accepted it. Whoever must not send twice does not retry such a message.
    """

    def __init__(self, message: str, *, may_have_been_delivered: bool = False) -> None:
        super().__init__(message)
        self.may_have_been_delivered = may_have_been_delivered


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str
    password: str
    implicit_tls: bool
    starttls: bool


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def send_email(
    *, to: str, subject: str, text: str, html: str | None = None, language: str | None = None
) -> None:
    """Deliver one message now. Raises MailDeliveryError when the mail server refuses it."""
    with Mailer(current_settings()) as mailer:
        mailer.send(to=to, subject=subject, text=text, html=html, language=language)


class Mailer:
    """Delivers messages over one SMTP connection, opened at the first message (or captures
    them on disk when EBOX_SMTP_URL is empty). Use as a context manager; not thread-safe.

    A failed message closes the connection; the next one opens a new connection.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self._smtp: smtplib.SMTP | None = None

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
        message = build_message(
            sender=self.settings.mail_from,
            to=to,
            subject=subject,
            text=text,
            html=html,
            language=language,
        )
        if self.target is None:
            _capture(message, self.settings.instance_path / CAPTURE_FOLDER)
        else:
            self._deliver(message, self.target)

    def close(self) -> None:
        if self._smtp is not None:
            with suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None

    def _deliver(self, message: EmailMessage, target: SmtpTarget) -> None:
        handed_over = False
        try:
            if self._smtp is not None and not _still_open(self._smtp):
                self._smtp = None  # the server closed an idle connection: open a new one
            if self._smtp is None:
                self._smtp = _open_session(target)
            handed_over = True
            self._smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            self._smtp = None  # whatever state it is in, it is not reused
            # Only an explicit refusal proves the server did not take the message; a connection
            # lost while sending leaves it unknown.
            refused = not handed_over or isinstance(exc, smtplib.SMTPResponseException)
            log.warning(
                "mail delivery to %s via %s:%s failed: %s",
                mask_address(str(message["To"])),
                target.host,
                target.port,
                type(exc).__name__,
            )
            raise MailDeliveryError(
                f"The mail server {target.host}:{target.port} did not accept the message "
                f"({type(exc).__name__})",
                may_have_been_delivered=not refused,
            ) from exc
        log.info("mail %s delivered to %s", message["Message-ID"], mask_address(str(message["To"])))


def queue_email(
    *, to: str, subject: str, text: str, html: str | None = None, language: str | None = None
) -> None:
    """Send once the current transaction has committed; never for a change that rolled back."""
    after_commit(
        lambda: send_email(to=to, subject=subject, text=text, html=html, language=language)
    )


def render_email(template: str, *, subject: Any, language: str, **context: Any) -> RenderedEmail:
    """Render templates/mail/<template>.txt and .html, and the (lazy) subject, in language."""
    with force_locale(language):
        return RenderedEmail(
            subject=str(subject),
            text=render_template(f"mail/{template}.txt", language=language, **context),
            html=render_template(f"mail/{template}.html", language=language, **context),
        )


def build_message(
    *, sender: str, to: str, subject: str, text: str, html: str | None, language: str | None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=_domain_of(sender))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    if language:
        # After the parts: making the message multipart moves Content-* headers into a part.
        message["Content-Language"] = language
    return message


def _domain_of(address: str) -> str:
    _, email = parseaddr(address)
    return email.rpartition("@")[2] or "ebox.localhost"


def parse_smtp_url(url: str) -> SmtpTarget:
    """smtp://user:password@host:port[?starttls=1] or smtps://... (TLS from the first byte)."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise MailDeliveryError(
            "EBOX_SMTP_URL must look like smtp://host:port or smtps://host:port"
        )
    implicit_tls = parts.scheme == "smtps"
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in {"1", "true", "yes"}
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if implicit_tls else 25),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        implicit_tls=implicit_tls,
        starttls=starttls and not implicit_tls,
    )


def _still_open(smtp: smtplib.SMTP) -> bool:
    try:
        return bool(smtp.noop()[0] == 250)
    except (smtplib.SMTPException, OSError):
        return False


def _open_session(target: SmtpTarget) -> smtplib.SMTP:
    smtp = _connect(target)
    try:
        if target.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if target.username:
            smtp.login(target.username, target.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    if target.implicit_tls:
        return smtplib.SMTP_SSL(
            target.host,
            target.port,
            timeout=SMTP_TIMEOUT_SECONDS,
            context=ssl.create_default_context(),
        )
    return smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT_SECONDS)


def _capture(message: EmailMessage, folder: Path) -> Path:
    """Write the message as <UTC time>-<random>.eml; written aside, then renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S-%f}-{secrets.token_hex(4)}.eml"
    partial = folder / f".{name}.part"
    try:
        partial.write_bytes(message.as_bytes())
        partial.replace(folder / name)
    except OSError as exc:
        log.warning("mail capture into %s failed: %s", folder, type(exc).__name__)
        raise MailDeliveryError(f"The message could not be written to {folder}") from exc
    log.info("mail %s captured as %s", message["Message-ID"], name)
    return folder / name


def mask_address(address: str) -> str:
    """The form used in logs: first letter and domain ("j***@example.org")."""
    local, _, domain = parseaddr(address)[1].rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"
