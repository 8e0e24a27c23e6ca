"""The public application form: a valid one waits for its business contact to confirm the address,
and becomes a pending application once confirmed; anything wrong is shown next to its field and
nothing is stored."""

from __future__ import annotations

import io
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ebox.applications.models import STATUS_PENDING, SenderApplication, UnconfirmedApplication
from ebox.audit.models import AuditEvent
from ebox.extensions import db
from tests.applications.application_helpers import (
    CONTACT,
    confirm,
    confirmation_path,
    post_application,
    valid_form,
)
from tests.mail.smtp_server import Received
from tests.senders.certificate_helpers import make_certificate_pem, make_key, private_key_pem


def stored_applications() -> int:
    """Applications kept in any state, confirmed or not."""
    db.session.rollback()
    confirmed = db.session.scalar(select(func.count(SenderApplication.id))) or 0
    unconfirmed = db.session.scalar(select(func.count(UnconfirmedApplication.id))) or 0
    return int(confirmed) + int(unconfirmed)


def waiting_form() -> UnconfirmedApplication:
    db.session.rollback()
    return db.session.scalars(select(UnconfirmedApplication)).one()


def test_the_form_is_public_and_has_three_message_type_rows(client: FlaskClient) -> None:
    page = client.get("/apply/").get_data(as_text=True)
    assert 'name="organisation_name"' in page
    assert 'name="message_types-2-code"' in page
    assert 'name="message_types-3-code"' not in page
    assert 'enctype="multipart/form-data"' in page


def test_a_valid_application_waits_for_its_address_and_is_then_pending_as_typed(
    client: FlaskClient, smtp_server: Received
) -> None:
    response = post_application(client, valid_form())
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/apply/sent/")
    waiting = waiting_form()
    assert waiting.email == CONTACT
    assert db.session.scalars(select(SenderApplication)).first() is None
    assert db.session.scalars(select(AuditEvent)).first() is None  # junk never enters the chain

    response = confirm(client, confirmation_path(smtp_server.last_to(CONTACT)))
    assert response.status_code == 303
    reference = response.headers["Location"].rsplit("/", 1)[-1]
    application = db.session.scalars(select(SenderApplication)).one()
    assert str(application.reference) == reference == str(waiting.reference)
    assert application.status == STATUS_PENDING
    assert application.organisation_name == "Federal Pension Service"
    assert application.enterprise_number == "0123456749"
    assert (application.business_contact_name, application.business_contact_email) == (
        "An Janssens",
        CONTACT,
    )
    assert application.technical_contact_email == "it@pensions.example"
    assert application.needs_registered_mail is True
    assert application.public_contact_address == "Tower of Pensions\n1060 Brussels"
    assert application.expected_monthly_volume == 120000
    assert application.message_types == [
        {
            "code": "PENSION_STATEMENT",
            "name_nl": "Pensioenoverzicht",
            "name_fr": "Aperçu de pension",
            "name_de": "Rentenübersicht",
            "name_en": "Pension statement",
            "validity_days": 365,
        }
    ]
    assert len(application.certificate_fingerprint_sha256) == 64
    assert application.language == "en"
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.actor_type, event.action, event.subject_id) == (
        "public",
        "application.submitted",
        str(application.id),
    )
    assert reference in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_page_after_sending_names_the_address_the_link_went_to(client: FlaskClient) -> None:
    response = post_application(client, valid_form())
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "confirm your e-mail address" in page
    assert CONTACT in page
    assert str(waiting_form().reference) in page
    assert "Federal Pension Service" not in page


def test_the_confirmation_request_speaks_the_language_of_the_page(
    client: FlaskClient, smtp_server: Received
) -> None:
    response = client.get("/apply/", headers={"Accept-Language": "fr"})
    assert response.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert token
    client.post(
        "/apply/",
        data={"csrf_token": token.group(1), **valid_form()},
        headers={"Accept-Language": "fr"},
        content_type="multipart/form-data",
    )
    assert waiting_form().language == "fr"
    assert smtp_server.last_to(CONTACT)["Content-Language"] == "fr"


def test_the_certificate_may_be_uploaded_as_a_file(client: FlaskClient) -> None:
    pem = make_certificate_pem()
    data: dict[str, object] = {**valid_form(), "certificate_pem": ""}
    data["certificate_file"] = (io.BytesIO(pem.encode()), "backoffice.pem")
    assert post_application(client, data).status_code == 303
    assert waiting_form().details["certificate_pem"] == pem


INVALID_FIELDS = [
    ("organisation_name", "", "Give the name of the organisation."),
    ("enterprise_number", "0123.456.748", "check digits"),
    ("enterprise_number", "2123456749", "starts with 0 or 1"),
    ("business_contact_email", "not-an-address", "Enter an e-mail address like"),
    ("business_contact_phone", "call me", "Enter a phone number like"),
    ("technical_contact_name", "", "Give a name."),
    ("technical_contact_email", "", "Give an e-mail address."),
    ("public_contact_url", "http://pensions.example", "https://"),
    ("use_case", "Letters", "at least 20 characters"),
    ("expected_monthly_volume", "0", "whole number from 1"),
    ("expected_monthly_volume", "many", "whole number from 1"),
    ("expected_peak_per_day", "999999999", "whole number from 1"),
    ("expected_peak_per_day", "200000", "cannot exceed the whole month"),
    ("message_types-0-code", "pension statement", "capital letters"),
    ("message_types-0-name_de", "", "Give the name in this language."),
    ("message_types-0-validity_days", "2000", "From 1 to 1096 days"),
    ("message_types-0-validity_days", "", "Give a number of days."),
    ("certificate_pem", "", "Give the certificate in PEM form."),
]


@pytest.mark.parametrize(("name", "value", "message"), INVALID_FIELDS)
def test_each_invalid_field_is_explained_next_to_it_and_nothing_is_stored(
    client: FlaskClient, name: str, value: str, message: str
) -> None:
    response = post_application(client, valid_form(**{name: value}))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    field_id = name
    error = re.search(
        rf'<p class="field__error" id="{re.escape(field_id)}-error">([^<]*)</p>', page
    )
    assert error, f"no error next to {name}"
    assert message in error.group(1).replace("&#39;", "'")
    assert f'aria-describedby="{field_id}-error"' in page or f'{field_id}-error"' in page
    assert stored_applications() == 0


def test_without_any_message_type_the_form_says_so(client: FlaskClient) -> None:
    empty_row = {
        f"message_types-0-{part}": ""
        for part in ("code", "name_nl", "name_fr", "name_de", "name_en", "validity_days")
    }
    response = post_application(client, valid_form(**empty_row))
    assert response.status_code == 422
    assert "Give at least one message type." in response.get_data(as_text=True)
    assert stored_applications() == 0


def test_two_types_with_one_code_are_refused(client: FlaskClient) -> None:
    second = {
        "message_types-1-code": "PENSION_STATEMENT",
        "message_types-1-name_nl": "a",
        "message_types-1-name_fr": "b",
        "message_types-1-name_de": "c",
        "message_types-1-name_en": "d",
        "message_types-1-validity_days": "10",
    }
    response = post_application(client, valid_form(**second))
    assert response.status_code == 422
    assert "Each message type needs a code of its own." in response.get_data(as_text=True)
    assert stored_applications() == 0


def test_without_a_way_for_citizens_to_reach_the_sender_the_form_says_so(
    client: FlaskClient,
) -> None:
    data = valid_form(public_contact_email="", public_contact_phone="", public_contact_url="")
    response = post_application(client, data)
    assert response.status_code == 422
    assert "Give at least an e-mail address, a phone number or a web page" in response.get_data(
        as_text=True
    )
    assert stored_applications() == 0


@pytest.mark.parametrize(
    ("pem_maker", "message"),
    [
        (lambda: make_certificate_pem(make_key("rsa", bits=1024)), "at least 2048"),
        (lambda: make_certificate_pem(is_ca=True), "certificate authority"),
        (lambda: "garbage", "not a PEM certificate"),
    ],
)
def test_a_bad_certificate_is_refused_next_to_its_field(
    client: FlaskClient, pem_maker: object, message: str
) -> None:
    response = post_application(client, valid_form(certificate_pem=pem_maker()))  # type: ignore[operator]
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert stored_applications() == 0


def test_a_pasted_private_key_is_refused_and_never_shown_again(client: FlaskClient) -> None:
    key = make_key()
    secret = private_key_pem(key)
    response = post_application(
        client, valid_form(certificate_pem=make_certificate_pem(key) + secret)
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Never send a private key" in page
    assert secret.splitlines()[1] not in page
    assert stored_applications() == 0


def test_an_oversized_upload_is_refused(client: FlaskClient) -> None:
    data: dict[str, object] = {**valid_form(), "certificate_pem": ""}
    data["certificate_file"] = (io.BytesIO(b"-----BEGIN CERTIFICATE-----" + b"A" * 30_000), "c.pem")
    response = post_application(client, data)
    assert response.status_code == 422
    assert "20 kB" in response.get_data(as_text=True)
    assert stored_applications() == 0


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/apply/", data=valid_form())
    assert response.status_code == 400
    assert stored_applications() == 0


def test_without_javascript_another_row_can_be_added_and_the_form_then_sent(
    client: FlaskClient, smtp_server: Received
) -> None:
    data = valid_form()
    data.pop("submit")
    data["add_type"] = "1"
    for row in (2,):
        data.update(
            {
                f"message_types-{row}-{part}": ""
                for part in ("code", "name_nl", "name_fr", "name_de", "name_en", "validity_days")
            }
        )
    response = post_application(client, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="message_types-3-code"' in page
    assert 'value="PENSION_STATEMENT"' in page  # what was typed stays
    assert 'class="field__error"' not in page  # adding a row is not a failed submit
    assert stored_applications() == 0

    data.pop("add_type")
    data["submit"] = "1"
    data.update(
        {
            "message_types-3-code": "PAYMENT_NOTICE",
            "message_types-3-name_nl": "Betalingsbericht",
            "message_types-3-name_fr": "Avis de paiement",
            "message_types-3-name_de": "Zahlungsmitteilung",
            "message_types-3-name_en": "Payment notice",
            "message_types-3-validity_days": "90",
        }
    )
    assert post_application(client, data).status_code == 303
    assert [row["code"] for row in waiting_form().details["message_types"]] == [
        "PENSION_STATEMENT",
        "PAYMENT_NOTICE",
    ]
