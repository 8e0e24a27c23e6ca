"""A complete, valid application as the form posts it, to be spoilt one field at a time."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.profile.forms_helper import csrf_token_from
from tests.senders.certificate_helpers import make_certificate_pem


def valid_form(certificate_pem: str | None = None, **changes: str) -> dict[str, str]:
    form = {
        "organisation_name": "Federal Pension Service",
        "enterprise_number": "BE 0123.456.749",
        "business_contact_name": "An Janssens",
        "business_contact_email": "an.janssens@pensions.example",
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
