"""No log line carries personal data: a citizen's whole journey, a sender's publications and the
worker's jobs run with every log record kept, and none names a national number in full, an
e-mail address, a document's title, body text or content.

The records are checked as the code wrote them (message and arguments, traceback included),
before any formatter could mask them; the output of both formatters (text and JSON) is checked
as well.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from ebox import create_app, national_number
from ebox.alerts.services import platform_today, run_inline
from ebox.demo.pdf import make_pdf
from ebox.evidence.jobs import make_missing_proofs
from ebox.extensions import db
from ebox.log_config import MaskingFormatter, MaskingJsonFormatter
from ebox.mailbox.models import Document
from ebox.retention.services import purge_expired
from examples.ebox_client import make_client, publish_pdf, send_registered_pdf
from tests.accounts.saml_helpers import answer_at_idp, post_to_acs, start_login
from tests.admin.admin_helpers import log_in_staff, staff_post
from tests.conftest import make_settings
from tests.factories import create_document, create_message_type, create_sender, login
from tests.live_server import live_server
from tests.mail.smtp_server import Received, smtp_server, text_of  # noqa: F401
from tests.profile.forms_helper import code_from
from tests.profile.forms_helper import submit as submit_form
from tests.soap.wss_helpers import REDIS_URL, make_identity, register

pytestmark = pytest.mark.slow

NUMBER = national_number.make("760412123")
OTHER_NUMBER = national_number.make("810923456")
EMAIL = "privacy.check.person@example.org"
TITLE = "Zorgverzekering beslissing Quixotic"
BODY = "Uw persoonlijke toelichting Zanzibar"
PDF_WORDS = "Inhoud van de brief Xylophone"
REGISTERED_TITLE = "Aangetekende brief Marmalade"


def submit(client: FlaskClient, page: str, action: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    # The app fixture's context outlives requests, and Flask-WTF caches a token of the session
    # before the login in `g`: drop it, as a new request would.
    g.pop("csrf_token", None)
    return submit_form(client, page, action, data)


def _forbidden() -> list[str]:
    printed = [_printed(number) for number in (NUMBER, OTHER_NUMBER)]
    words = [TITLE, BODY, PDF_WORDS, REGISTERED_TITLE, EMAIL]
    # Parts too: a title cut short, or the local part of an address, is personal data as well.
    parts = ["Quixotic", "Zanzibar", "Xylophone", "Marmalade", "privacy.check.person"]
    return [NUMBER, OTHER_NUMBER, *printed, *words, *parts]


def _printed(number: str) -> str:
    return f"{number[0:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:11]}"


def _texts(record: logging.LogRecord) -> list[str]:
    formatter = logging.Formatter("%(message)s")
    raw = formatter.format(record)  # the message with its arguments, and any traceback
    line = MaskingJsonFormatter().format(record)
    # The values decoded too, so that no escaped character in the JSON text hides a word.
    values = "\n".join(str(value) for value in json.loads(line).values())
    return [raw, MaskingFormatter("%(message)s").format(record), line, values]


def test_no_log_record_names_a_citizen_an_address_a_title_or_content(
    app: Flask,
    client: FlaskClient,
    instance_path: Path,
    database_url: str,
    smtp_server: Received,  # noqa: F811
    every_log_record: list[logging.LogRecord],
) -> None:
    _a_sender_publishes_over_soap(app, instance_path, database_url)
    _the_citizen_logs_in_and_confirms_an_address(client, smtp_server)
    _the_citizen_reads_searches_archives_and_confirms_receipt(client)
    _another_citizen_tries_the_documents_and_staff_look_up(app)
    _the_worker_alerts_makes_proofs_and_purges(app, smtp_server)

    # The journey did reach the lines most likely to name someone.
    messages = [record.getMessage() for record in every_log_record]
    for expected in ("published by sender", "not theirs", "logged in", "expired documents deleted"):
        assert any(expected in message for message in messages), expected
    leaks = [
        (record.name, text)
        for record in every_log_record
        for text in _texts(record)
        if any(word in text for word in _forbidden())
    ]
    assert leaks == []
    # And no e-mail address at all reached a log line, whoever's it was.
    addresses = [
        text
        for record in every_log_record
        for text in _texts(record)[1:]
        if re.search(r"[\w.+-]{2,}@[\w-]+\.[\w.]+", text)
    ]
    assert addresses == []


def _a_sender_publishes_over_soap(app: Flask, instance_path: Path, database_url: str) -> None:
    sender = create_sender(may_send_registered=True)
    create_message_type(sender, code="CARE")
    identity = make_identity("rsa")
    register(identity, sender)
    settings = make_settings(instance_path, database_url, redis_url=REDIS_URL)
    served = create_app(settings, TESTING=True)
    with live_server(served) as server:
        settings.public_url = server.url
        pdf = make_pdf("Brief", [PDF_WORDS])
        ordinary = make_client(
            f"{server.url}/soap/EboxMessage/v1?wsdl", identity.key_pem, identity.cert_pem
        )
        fields = {"recipient": NUMBER, "message_type": "CARE", "pdf": pdf, "file_name": "b.pdf"}
        publish_pdf(ordinary, title=TITLE, body_text=BODY, ticket="PRIV-1", **fields)
        publish_pdf(ordinary, title=TITLE, body_text=BODY, ticket="PRIV-1", **fields)  # a retry
        registered = make_client(
            f"{server.url}/soap/RegisteredMail/v1?wsdl", identity.key_pem, identity.cert_pem
        )
        send_registered_pdf(registered, title=REGISTERED_TITLE, ticket="PRIV-2", **fields)
        ordinary.service.hasAnEbox(NationalNumber=[NUMBER, OTHER_NUMBER])
    with served.app_context():
        db.engine.dispose()


def _the_citizen_logs_in_and_confirms_an_address(client: FlaskClient, mail: Received) -> None:
    idp_url, _ = start_login(client)
    answer = answer_at_idp(client, idp_url, national_number=NUMBER, language="nl")
    assert post_to_acs(client, answer).status_code == 302
    welcome = "/profile/welcome"
    submit(client, welcome, "/profile/welcome/conditions", {"accept": "y"})
    submit(client, welcome, "/profile/email", {"email": EMAIL})
    code = code_from(text_of(mail.last_to(EMAIL)))
    assert submit(client, welcome, "/profile/email/confirm", {"code": code}).status_code == 303


def _the_citizen_reads_searches_archives_and_confirms_receipt(client: FlaskClient) -> None:
    ordinary = db.session.scalars(select(Document).where(Document.title == TITLE)).one()
    registered = db.session.scalars(
        select(Document).where(Document.title == REGISTERED_TITLE)
    ).one()
    for path in (
        "/",
        f"/?q={TITLE.split()[0]}",
        f"/documents/{ordinary.id}",
        f"/documents/{ordinary.id}/content",
        f"/documents/{ordinary.id}/content?disposition=inline",
        "/history",
        "/profile/",
    ):
        assert client.get(path).status_code == 200, path
    page = f"/documents/{ordinary.id}"
    submit(client, page, f"/documents/{ordinary.id}/hide", {"view": "document"})
    submit(client, page, f"/documents/{ordinary.id}/unhide", {"view": "document"})
    registered_page = f"/documents/{registered.id}"
    submit(client, registered_page, f"/documents/{registered.id}/receipt")
    assert client.get(f"/documents/{registered.id}/content").status_code == 200


def _another_citizen_tries_the_documents_and_staff_look_up(app: Flask) -> None:
    ordinary = db.session.scalars(select(Document).where(Document.title == TITLE)).one()
    intruder = app.test_client()
    login(intruder, _citizen_for(OTHER_NUMBER))
    assert intruder.get(f"/documents/{ordinary.id}").status_code == 404
    staff = app.test_client()
    log_in_staff(staff, "support")
    g.pop("csrf_token", None)
    answer = staff_post(
        staff, "/admin/citizen", "/admin/citizen", {"national_number": NUMBER, "reason": "call"}
    )
    assert answer.status_code == 200


def _citizen_for(number: str):  # type: ignore[no-untyped-def]
    from tests.factories import create_citizen

    return create_citizen(national_number=number, email="other.person@example.org")


def _the_worker_alerts_makes_proofs_and_purges(app: Flask, mail: Received) -> None:
    run_inline(platform_today())
    make_missing_proofs()
    # A document past its expiry: the purge deletes it and logs what it did.
    expired = create_document(NUMBER, title=TITLE + " old")
    expired.expires_at = expired.published_at + timedelta(seconds=1)
    expired.published_at -= timedelta(days=2)
    expired.expires_at -= timedelta(days=2)
    db.session.commit()
    purge_expired()
