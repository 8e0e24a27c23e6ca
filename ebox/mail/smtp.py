"""Delivery over SMTP: a pool of connections to one mail server, fed from one stream of messages.

Many messages at once (the daily alert) go out over several SMTP connections, and over each one
with PIPELINING when the server offers it (RFC 2920): a message's content and the next
message's MAIL, RCPT and DATA leave in one write, and their replies come back together. A
connection never has more than one message whose content was sent and whose reply is awaited:
that is the only message a broken connection leaves in doubt (may_have_been_delivered).
"""

from __future__ import annotations

import itertools
import logging
import smtplib
import ssl
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

# A stuck mail server must not hold a web request (or a worker) for long.
SMTP_TIMEOUT_SECONDS = 10
# A message that met a broken connection before it was handed over goes out on another one, up
# to this many times in all; then it counts as refused.
SMTP_TRIES = 3
# The replies that accept MAIL FROM, RCPT TO and DATA.
ENVELOPE_REPLIES = ({250}, {250, 251}, {354})


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
class OutgoingMail:
    """A message ready to go: key is the caller's name for it (a delivery id, say)."""

    key: int
    to: str
    data: bytes  # the whole message, CRLF line ends


@dataclass(frozen=True)
class MailResult:
    key: int
    error: MailDeliveryError | None  # None: the mail server accepted the message


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


class SmtpPool:
    """Up to `size` SMTP connections to one server, fed from one stream of messages."""

    def __init__(self, target: SmtpTarget, sender: str, size: int) -> None:
        self.target = target
        self.sender = parseaddr(sender)[1]
        self.size = max(size, 1)
        self.where = f"{target.host}:{target.port}"
        self.live: list[_Connection] = []

    def deliver(self, mails: Iterator[OutgoingMail]) -> list[MailResult]:
        first = next(mails, None)
        if first is None:
            return []
        results: list[MailResult] = []
        feed = _Feed(self._sendable(itertools.chain([first], mails), results))
        while feed.waiting() or any(connection.is_busy() for connection in self.live):
            error = self._fill() if feed.waiting() else None
            if error is not None:  # no connection at all: nothing more can go out
                results += [self._refused(mail, error) for mail in feed.drain()]
            for connection in list(self.live):
                done, back = connection.step(feed.next())
                results += done
                results += [self._refused(m, "the connection broke") for m in feed.again(back)]
                if connection.broken:
                    self.live.remove(connection)
        return results

    def _sendable(
        self, mails: Iterator[OutgoingMail], results: list[MailResult]
    ) -> Iterator[OutgoingMail]:
        """The messages whose addresses plain SMTP can carry; the others are refused."""
        for mail in mails:
            if mail.to.isascii() and self.sender.isascii():
                yield mail
            else:
                results.append(self._refused(mail, "an address beyond ASCII"))

    def _fill(self) -> str | None:
        """Open connections up to the pool's size; an error only if none could be opened."""
        while len(self.live) < self.size:
            try:
                smtp = _open_session(self.target)
                self.live.append(_Connection(smtp, self.sender, self.where))
            except (smtplib.SMTPException, OSError) as exc:
                if not self.live:
                    return type(exc).__name__
                self.size = len(self.live)  # the server takes no more: work with these
        return None

    def _refused(self, mail: OutgoingMail, reason: str) -> MailResult:
        _log_failure(mail, self.where, reason)
        return MailResult(
            mail.key,
            MailDeliveryError(
                f"The mail server {self.where} did not accept the message ({reason})"
            ),
        )

    def close(self) -> None:
        for connection in self.live:
            connection.close()
        self.live = []


class _Feed:
    """The messages still to go: those a broken connection gave back first, then the stream."""

    def __init__(self, mails: Iterator[OutgoingMail]) -> None:
        self.mails = mails
        self.returned: deque[OutgoingMail] = deque()
        self.tries: dict[int, int] = {}
        self.more = True

    def next(self) -> OutgoingMail | None:
        if self.returned:
            return self.returned.popleft()
        mail = next(self.mails, None) if self.more else None
        self.more = mail is not None
        return mail

    def waiting(self) -> bool:
        return self.more or bool(self.returned)

    def again(self, mails: list[OutgoingMail]) -> list[OutgoingMail]:
        """Take back messages never handed over; returns those out of tries."""
        spent = []
        for mail in mails:
            self.tries[mail.key] = self.tries.get(mail.key, 1) + 1
            if self.tries[mail.key] > SMTP_TRIES:
                spent.append(mail)
            else:
                self.returned.append(mail)
        return spent

    def drain(self) -> list[OutgoingMail]:
        left = [*self.returned, *self.mails]
        self.returned.clear()
        self.more = False
        return left


class _Connection:
    """One SMTP session. At most one message is handed over (its content sent, the reply
    awaited), and with PIPELINING the next message's envelope travels with it."""

    def __init__(self, smtp: smtplib.SMTP, sender: str, where: str) -> None:
        self.smtp = smtp
        self.pipelining = smtp.has_extn("pipelining")
        self.sender = sender
        self.where = where
        self.kept: deque[int] = deque()  # replies read in lockstep, not yet judged
        self.handed: OutgoingMail | None = None
        self.announced: OutgoingMail | None = None  # MAIL, RCPT, DATA sent; replies unread
        self.reset_due = False  # the last transaction was refused: RSET before the next
        self.reset_unread = False
        self.broken = False

    def is_busy(self) -> bool:
        return self.handed is not None or self.announced is not None

    def step(self, mail: OutgoingMail | None) -> tuple[list[MailResult], list[OutgoingMail]]:
        """Read the replies awaited, hand over the message whose DATA was accepted, and start
        on `mail`. Returns the results known now, and the messages never handed over that
        must go out on another connection (this one broke)."""
        done: list[MailResult] = []
        try:
            if self.handed is not None:
                done.append(self._outcome(self.handed, self._reply()))
                self.handed = None
            if self.pipelining:
                self.handed = self._accepted(done)
                self.announced = mail
                self._write(self._content(self.handed) + self._envelope(mail))
            elif mail is not None:
                self.announced = mail
                self._write(self._envelope(mail), lockstep=True)
                self.handed = self._accepted(done)
                self._write(self._content(self.handed))
        except (smtplib.SMTPException, OSError) as exc:
            back = [self.announced] if self.announced is not None else []
            if mail is not None and mail is not self.announced:
                back.append(mail)
            self.announced = None
            return done + self._break(exc), back
        return done, []

    def _envelope(self, mail: OutgoingMail | None) -> bytes:
        if mail is None:
            return b""
        reset = b"RSET\r\n" if self.reset_due else b""
        self.reset_unread, self.reset_due = self.reset_due, False
        return reset + b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (
            self.sender.encode(),
            mail.to.encode(),
        )

    def _accepted(self, done: list[MailResult]) -> OutgoingMail | None:
        """The announced message if the server said 354 to its DATA; a refusal goes to done."""
        mail = self.announced
        if mail is None:
            return None
        if self.reset_unread:
            self._reply()
            self.reset_unread = False
        codes = [self._reply() for _ in ENVELOPE_REPLIES]
        if 421 in codes:
            raise smtplib.SMTPServerDisconnected("the server is closing the connection")
        self.announced = None
        refusal = next((c for c, ok in zip(codes, ENVELOPE_REPLIES, strict=True) if c not in ok), 0)
        if not refusal:
            return mail
        if codes[2] == 354:  # DATA taken though nobody can receive it: end it empty
            self._write(b".\r\n")
            self._reply()
        self.reset_due = True
        done.append(self._refusal(mail, refusal))
        return None

    def _content(self, mail: OutgoingMail | None) -> bytes:
        if mail is None:
            return b""
        data = mail.data.replace(b"\r\n.", b"\r\n..")
        return (b"." + data if data.startswith(b".") else data) + b".\r\n"

    def _outcome(self, mail: OutgoingMail, code: int) -> MailResult:
        if code == 250:
            return MailResult(mail.key, None)
        return self._refusal(mail, code)

    def _refusal(self, mail: OutgoingMail, code: int) -> MailResult:
        _log_failure(mail, self.where, f"reply {code}")
        return MailResult(
            mail.key,
            MailDeliveryError(
                f"The mail server {self.where} did not accept the message (reply {code})"
            ),
        )

    def _reply(self) -> int:
        if self.kept:
            return self.kept.popleft()
        code, _ = self.smtp.getreply()
        return code

    def _write(self, data: bytes, *, lockstep: bool = False) -> None:
        """Send data; lockstep (a server without PIPELINING): command by command, each reply
        read before the next command is sent, and kept for _reply()."""
        if not lockstep:
            if data:
                self.smtp.send(data)
            return
        for line in data.splitlines(keepends=True):
            self.smtp.send(line)
            self.kept.append(self.smtp.getreply()[0])

    def _break(self, exc: BaseException) -> list[MailResult]:
        """The connection is unusable: the message handed over may have arrived."""
        self.broken = True
        self.close()
        if self.handed is None:
            return []
        mail, self.handed = self.handed, None
        _log_failure(mail, self.where, type(exc).__name__)
        return [
            MailResult(
                mail.key,
                MailDeliveryError(
                    f"The connection to the mail server {self.where} broke while the message "
                    f"was being sent ({type(exc).__name__})",
                    may_have_been_delivered=True,
                ),
            )
        ]

    def close(self) -> None:
        with suppress(smtplib.SMTPException, OSError):
            if not self.broken:
                self.smtp.quit()
        self.smtp.close()


def _log_failure(mail: OutgoingMail, where: str, reason: str) -> None:
    log.warning("mail delivery to %s via %s failed: %s", mask_address(mail.to), where, reason)


def _open_session(target: SmtpTarget) -> smtplib.SMTP:
    smtp = _connect(target)
    try:
        if target.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if target.username:
            smtp.login(target.username, target.password)
        smtp.ehlo_or_helo_if_needed()
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


def mask_address(address: str) -> str:
    """The form used in logs: first letter and domain ("j***@example.org")."""
    local, _, domain = parseaddr(address)[1].rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"
