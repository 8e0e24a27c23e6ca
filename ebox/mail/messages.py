"""Outgoing e-mail's words: templates rendered in the recipient's language, and the message
written out as SMTP carries it. Nothing here ever logs a body: e-mails carry one-time codes.
"""

from __future__ import annotations

import binascii
import functools
import secrets
from dataclasses import dataclass
from datetime import date
from email import policy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from babel import Locale
from babel.dates import format_date
from flask import current_app, render_template
from flask_babel import force_locale, get_locale, get_translations
from jinja2 import Environment, Template, select_autoescape

from ebox.db_types import utcnow


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(template: str, *, subject: Any, language: str, **context: Any) -> RenderedEmail:
    """Render templates/mail/<template>.txt and .html, and the (lazy) subject, in language."""
    with force_locale(language):
        return RenderedEmail(
            subject=str(subject),
            text=render_template(f"mail/{template}.txt", language=language, **context),
            html=render_template(f"mail/{template}.html", language=language, **context),
        )


class MailTemplates:
    """templates/mail/<template>.txt and .html in one language, for rendering many messages.

    The translations, plural forms and date formats are bound once here; render_email looks
    them up through Flask-Babel for every string of every message, which costs most of a
    render. The templates see what render() is given, the i18n calls and `dateformat`. Made in
    an application context; mail_templates() keeps one per template and language.
    """

    def __init__(self, template: str, language: str) -> None:
        with force_locale(language):
            translations = get_translations()
            locale = get_locale() or Locale.parse(language)
        environment = Environment(
            loader=current_app.jinja_env.loader,
            autoescape=select_autoescape(("html", "htm", "xml", "xhtml", "svg")),  # as Flask
            extensions=["jinja2.ext.i18n"],
        )
        # Newstyle, as Flask-Babel installs them: _() and ngettext() format their arguments.
        environment.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        environment.filters["dateformat"] = functools.partial(_date_in, locale=str(locale))
        self.language = language
        self.text: Template = environment.get_template(f"mail/{template}.txt")
        self.html: Template = environment.get_template(f"mail/{template}.html")

    def render(self, *, subject: str, **context: Any) -> RenderedEmail:
        return RenderedEmail(
            subject=subject,
            text=self.text.render(language=self.language, **context),
            html=self.html.render(language=self.language, **context),
        )


def mail_templates(template: str, language: str) -> MailTemplates:
    """The application's MailTemplates for template and language, made at the first call."""
    made: dict[tuple[str, str], MailTemplates] = current_app.extensions.setdefault(
        "ebox.mail_templates", {}
    )
    key = (template, language)
    if key not in made:
        made[key] = MailTemplates(template, language)
    return made[key]


@functools.lru_cache(maxsize=1024)
def _date_in(value: date, pattern: str = "medium", *, locale: str) -> str:
    """Flask-Babel's dateformat filter for a date, in a fixed locale."""
    return format_date(value, format=pattern, locale=locale)


def compose_message(
    *, sender: str, to: str, subject: str, text: str, html: str | None, language: str | None
) -> bytes:
    """The message as SMTP carries it (CRLF line ends, before dot-stuffing): the headers and
    parts the e-mail package would make (text, or text and HTML as multipart/alternative;
    7bit or quoted-printable UTF-8), written out directly, which costs far less per message."""
    head = [
        _header("From", sender),
        _header("To", to),
        _header("Subject", subject),
        b"Date: " + format_datetime(utcnow()).encode(),
        b"Message-ID: " + make_msgid(domain=_domain_of(sender)).encode(),
        b"Auto-Submitted: auto-generated",
        b"MIME-Version: 1.0",
    ]
    text_part = _text_part("plain", text)
    if html is None:
        head.append(text_part[0])
        body = text_part[1]
    else:
        html_part = _text_part("html", html)
        boundary = b"=_" + secrets.token_hex(16).encode()
        head.append(b'Content-Type: multipart/alternative; boundary="%s"' % boundary)
        body = b"".join(
            b"--%s\r\n%s\r\n\r\n%s" % (boundary, headers, content)
            for headers, content in (text_part, html_part)
        )
        body += b"--%s--\r\n" % boundary
    if language:
        head.append(_header("Content-Language", language))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _text_part(subtype: str, content: str) -> tuple[bytes, bytes]:
    """(headers, body) of a UTF-8 text part: 7bit when it is ASCII in short lines."""
    raw = content.replace("\r\n", "\n").encode()
    if raw.isascii() and all(len(line) <= 78 for line in raw.split(b"\n")):
        encoding, encoded = b"7bit", raw
    else:
        encoding, encoded = b"quoted-printable", binascii.b2a_qp(raw, istext=True)
    headers = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: %s' % (
        subtype.encode(),
        encoding,
    )
    return headers, encoded.replace(b"\n", b"\r\n").removesuffix(b"\r\n") + b"\r\n"


def _header(name: str, value: str) -> bytes:
    if value.isascii() and value.isprintable() and len(name) + len(value) < 76:
        return f"{name}: {value}".encode()
    return _folded(name, value)


@functools.lru_cache(maxsize=256)
def _folded(name: str, value: str) -> bytes:
    """A header the e-mail package folds and encodes (RFC 2047): subjects, mostly, so cached."""
    folded = policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP)
    return folded.encode("ascii").rstrip(b"\r\n")


@functools.lru_cache(maxsize=16)
def _domain_of(address: str) -> str:
    _, email = parseaddr(address)
    return email.rpartition("@")[2] or "ebox.localhost"
