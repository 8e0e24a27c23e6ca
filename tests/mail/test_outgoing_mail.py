"""Outgoing e-mail: SMTP delivery, capture on disk, sending after the commit."""

from __future__ import annotations

import email
import logging
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ebox import transactions
from ebox.mail.queries import capture_folder
from ebox.mail.services import queue_email, send_email
from ebox.mail.smtp import MailDeliveryError, parse_smtp_url
from tests.mail.smtp_server import Received, free_port, text_of


def test_a_message_goes_out_over_smtp_with_text_and_html_parts(app, smtp_server):
    send_email(
        to="anna@example.org",
        subject="Hello",
        text="Plain words",
        html="<p>Rich words</p>",
        language="de",
    )
    [message] = smtp_server.messages
    assert smtp_server.recipients == [["anna@example.org"]]
    assert message["From"] == app.config["EBOX"].mail_from
    assert message["Subject"] == "Hello"
    assert message["Date"] and message["Message-ID"].endswith("@ebox.localhost>")
    assert message["Content-Language"] == "de"
    assert text_of(message).strip() == "Plain words"
    assert "<p>Rich words</p>" in message.get_body(preferencelist=("html",)).get_content()


def test_an_unreachable_mail_server_raises_a_clear_error(app):
    settings = app.config["EBOX"]
    port = free_port()
    settings.smtp_url = f"smtp://127.0.0.1:{port}"
    try:
        with pytest.raises(MailDeliveryError, match=f"127.0.0.1:{port}"):
            send_email(to="anna@example.org", subject="Hello", text="secret 123456")
    finally:
        settings.smtp_url = ""


def test_a_failed_delivery_logs_no_body_and_no_full_address(app, caplog, monkeypatch):
    # Alembic's fileConfig (run by the test migrations) disables loggers created before it.
    monkeypatch.setattr(logging.getLogger("ebox.mail.services"), "disabled", False)
    settings = app.config["EBOX"]
    settings.smtp_url = f"smtp://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(MailDeliveryError):
            send_email(to="anna@example.org", subject="Code", text="secret 654321")
    finally:
        settings.smtp_url = ""
    assert "mail delivery to a***@example.org" in caplog.text
    assert "654321" not in caplog.text
    assert "anna@example.org" not in caplog.text


def test_without_an_smtp_url_mail_is_captured_as_an_eml_file(app, unique):
    assert app.config["EBOX"].smtp_url == ""
    send_email(to="bert@example.org", subject=f"Captured {unique}", text="Kept on disk")
    files = [p for p in capture_folder().glob("*.eml") if unique in p.read_text()]
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert message["To"] == "bert@example.org"
    assert text_of(message).strip() == "Kept on disk"


def test_a_queued_message_waits_for_the_commit(app, smtp_server):
    queue_email(to="carla@example.org", subject="After commit", text="Sent once committed")
    assert smtp_server.messages == []
    transactions.commit()
    assert [m["Subject"] for m in smtp_server.messages] == ["After commit"]


def test_a_queued_message_is_dropped_on_rollback(app, smtp_server):
    queue_email(to="carla@example.org", subject="Never", text="Rolled back")
    transactions.rollback()
    transactions.commit()
    assert smtp_server.messages == []


def test_smtp_urls_give_host_port_credentials_and_tls_mode():
    plain = parse_smtp_url("smtp://mailer:p%40ss@mail.example:2525?starttls=1")
    assert (plain.host, plain.port, plain.username, plain.password) == (
        "mail.example",
        2525,
        "mailer",
        "p@ss",
    )
    assert plain.starttls and not plain.implicit_tls
    implicit = parse_smtp_url("smtps://mail.example")
    assert implicit.port == 465 and implicit.implicit_tls and not implicit.starttls
    assert parse_smtp_url("smtp://mail.example").port == 25
    with pytest.raises(MailDeliveryError):
        parse_smtp_url("http://mail.example")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_credentials_in_the_smtp_url_are_used_to_log_in(app):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    received = Received()
    port = free_port()
    controller = Controller(
        received,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,  # loopback only; production uses STARTTLS or smtps
        auth_required=True,
    )
    controller.start()
    settings = app.config["EBOX"]
    try:
        settings.smtp_url = f"smtp://mailer:s3cret@127.0.0.1:{port}"
        send_email(to="dirk@example.org", subject="Authenticated", text="hello")
    finally:
        settings.smtp_url = ""
        controller.stop()
    assert logins == [(b"mailer", b"s3cret")]
    assert [m["Subject"] for m in received.messages] == ["Authenticated"]
