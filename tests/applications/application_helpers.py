"""A complete, valid application as the form posts it, to be spoilt one field at a time; and the
confirmation link it sends, opened as its business contact would."""

from __future__ import annotations

import email
import re
import uuid
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import cast

from flask import Flask, current_app, g
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ebox import rate_limits
from ebox.applications.models import SenderApplication
from ebox.extensions import db
from ebox.mail.queries import capture_folder
from tests.mail.smtp_server import Received, text_of
from tests.profile.forms_helper import csrf_token_from
from tests.senders.certificate_helpers import make_certificate_pem

CONTACT = "an.janssens@pensions.example"
_LINK = re.compile(r"https?://[^/\s]+(/apply/confirm/[A-Za-z0-9_-]+)")


def valid_form(certificate_pem: str | None = None, **changes: str) -> dict[str, str]:
    form = {
        "organisation_name": "Federal Pension Service",
        "enterprise_number": "BE 0123.456.749",
        "business_contact_name": "An Janssens",
        "business_contact_email": CONTACT,
        "business_contact_phone": "+32 2 123 45 67",
        "technical_contact_name": "Luc Dubois",
        "technical_contact_email": "it@pensions.example",
        "technical_contact_phone": "+32 2 765 43 21",
        "public_contact_email": "info@pensions.example",
        "public_contact_phone": "1765",
        "public_contact_url": "https://pensions.example/contact",
        "public_contact_address": "Tower of Pensions\n1060 Brussels",
        "use_case": "Yearly pension statements and payment notices for retired people.",
        "expected_monthly_volume": "120000",
        "expected_peak_per_day": "30000",
        "message_types-0-code": "PENSION_STATEMENT",
        "message_types-0-name_nl": "Pensioenoverzicht",
        "message_types-0-name_fr": "Aperçu de pension",
        "message_types-0-name_de": "Rentenübersicht",
        "message_types-0-name_en": "Pension statement",
        "message_types-0-validity_days": "365",
        "message_types-1-code": "",
        "message_types-1-name_nl": "",
        "message_types-1-name_fr": "",
        "message_types-1-name_de": "",
        "message_types-1-name_en": "",
        "message_types-1-validity_days": "",
        "needs_registered_mail": "y",
        "certificate_pem": make_certificate_pem() if certificate_pem is None else certificate_pem,
        "submit": "1",
    }
    form.update(changes)
    return form


def post_application(client: FlaskClient, data: dict[str, object]) -> TestResponse:
    token = csrf_token_from(client, "/apply/")
    return client.post(
        "/apply/", data={"csrf_token": token, **data}, content_type="multipart/form-data"
    )


def forget_application_limits(app: Flask) -> None:
    """What a fresh web process knows of the limits: the counts kept in this one are dropped
    (counts in a reachable Redis stay)."""
    app.extensions.pop(rate_limits.EXTENSION, None)


def switch_browser() -> None:
    """Requests share the test's application context, hence flask.g, where Flask-WTF keeps the
    CSRF token of the request before: forget it so that the next browser gets its own."""
    g.pop("csrf_token", None)


def confirmation_path(mail: EmailMessage) -> str:
    """The path of the confirmation link in the e-mail's text."""
    found = _LINK.search(text_of(mail))
    assert found, "no confirmation link in the e-mail"
    return found.group(1)


def confirm(client: FlaskClient, path: str) -> TestResponse:
    """Open the link, then press the page's button."""
    return client.post(path, data={"csrf_token": csrf_token_from(client, path)})


def submit_confirmed_application(
    client: FlaskClient, received: Received | None = None, **changes: str
) -> SenderApplication:
    """An application that reached staff: the form sent, then its link used. The link is read
    from the test's SMTP server when given; otherwise the e-mail is captured on disk for the
    time of the post, whatever server the test runs. Each call starts with fresh limits."""
    forget_application_limits(current_app)
    data = valid_form(**changes)
    if received is None:
        mail = _post_capturing_the_email(client, data)
    else:
        response = post_application(client, data)
        assert response.status_code == 303, response.get_data(as_text=True)
        mail = received.last_to(data["business_contact_email"])
    response = confirm(client, confirmation_path(mail))
    assert response.status_code == 303, response.get_data(as_text=True)
    reference = uuid.UUID(response.headers["Location"].rsplit("/", 1)[-1])
    db.session.rollback()
    return db.session.scalars(
        select(SenderApplication).where(SenderApplication.reference == reference)
    ).one()


def _post_capturing_the_email(client: FlaskClient, data: dict[str, str]) -> EmailMessage:
    settings = current_app.config["EBOX"]
    folder = capture_folder()
    before = set(folder.glob("*.eml"))
    previous, settings.smtp_url = settings.smtp_url, ""
    try:
        response = post_application(client, data)
    finally:
        settings.smtp_url = previous
    assert response.status_code == 303, response.get_data(as_text=True)
    [written] = set(folder.glob("*.eml")) - before
    message = email.message_from_bytes(written.read_bytes(), policy=default_policy)
    return cast(EmailMessage, message)
