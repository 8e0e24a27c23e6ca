"""An institution's whole way in: it applies through the public form, staff approve it in the
admin area, its back office publishes with zeep, and the citizen reads the document with the
sender's contact details. Every step goes through the real pages and the live SOAP endpoint."""

from __future__ import annotations

import pytest
import zeep
from flask import Flask, g

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from examples.ebox_client import fault_code, publish_pdf
from tests.admin.admin_helpers import log_in_staff, staff_post, submit_application
from tests.factories import create_citizen, login
from tests.mail.smtp_server import Received, text_of
from tests.soap.wss_helpers import Identity

CONTACT = "an.janssens@pensions.example"
PDF = make_pdf("Pension statement 2026", ["Your yearly pension statement."])


def publish_statement(back_office: zeep.Client, recipient: str) -> object:
    return publish_pdf(
        back_office,
        recipient=recipient,
        message_type="PENSION_STATEMENT",
        title="Your pension statement 2026",
        pdf=PDF,
        file_name="pension-2026.pdf",
        ticket="PENSION-2026-000001",
        language="en",
    )


def switch_browser() -> None:
    """Requests share the test's application context, hence flask.g, where Flask-WTF keeps the
    CSRF token of the request before: forget it so that the next browser gets its own."""
    g.pop("csrf_token", None)


def test_an_institution_applies_is_approved_publishes_and_the_citizen_can_reach_it(
    app: Flask, zeep_client: zeep.Client, identity: Identity, smtp_server: Received
) -> None:
    applicant, staff, citizen_browser = (app.test_client() for _ in range(3))
    for browser in (applicant, staff, citizen_browser):
        browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    citizen = create_citizen()
    db.session.commit()

    # 1. The institution applies with the certificate its back office signs with.
    application = submit_application(
        applicant, smtp_server, certificate_pem=identity.cert_pem.decode()
    )
    assert str(application.reference) in text_of(smtp_server.last_to(CONTACT))

    # 2. Until staff approve it, that certificate opens nothing.
    with pytest.raises(zeep.exceptions.Fault) as refused:
        publish_statement(zeep_client, citizen.national_number)
    assert fault_code(refused.value) == "CERTIFICATE_UNKNOWN"

    # 3. An admin approves the application; the applicant is told.
    switch_browser()
    log_in_staff(staff, "admin")
    detail = f"/admin/applications/{application.id}"
    assert "Federal Pension Service" in staff.get(detail).get_data(as_text=True)
    assert staff_post(staff, detail, f"{detail}/approve").status_code == 303
    assert "approved" in text_of(smtp_server.last_to(CONTACT))

    # 4. The back office publishes; the citizen has already activated the eBox.
    result = publish_statement(zeep_client, citizen.national_number)
    assert result.CitizenActivated is True

    # 5. The citizen finds it, with who sent it and how to reach them.
    login(citizen_browser, citizen)
    inbox = citizen_browser.get("/").get_data(as_text=True)
    assert "Your pension statement 2026" in inbox and "Federal Pension Service" in inbox
    page = citizen_browser.get(f"/documents/{result.EboxMessageId}").get_data(as_text=True)
    for contact in (
        "info@pensions.example",
        "1765",
        "https://pensions.example/contact",
        "Tower of Pensions",
    ):
        assert contact in page
    content = citizen_browser.get(f"/documents/{result.EboxMessageId}/content")
    assert content.status_code == 200 and content.data == PDF

    # 6. Staff see that it was delivered, never what it says.
    delivery = staff.get(f"/admin/delivery?message_id={result.EboxMessageId}")
    assert delivery.status_code == 200
    assert "Your pension statement 2026" not in delivery.get_data(as_text=True)
