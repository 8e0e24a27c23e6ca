"""The SAML login round trip with the real demo identity provider and real signatures."""

from __future__ import annotations

import uuid

import pytest
from flask import g
from lxml import etree
from saml2.saml import AUTHN_PASSWORD_PROTECTED
from sqlalchemy import func, select

from ebox import national_number
from ebox.accounts.models import Citizen, SeenAssertion, WebSession
from ebox.accounts.saml import language_from_idp
from ebox.accounts.views import safe_next
from ebox.db_types import utcnow
from ebox.demo.idp import DEMO_CITIZENS
from ebox.evidence.services import chain_of
from ebox.evidence.xml import NAMESPACES
from ebox.extensions import db
from tests.accounts.saml_helpers import (
    answer_at_idp,
    hidden_fields,
    log_in_through_idp,
    post_to_acs,
    start_login,
    visit_protected_page,
)
from tests.factories import create_citizen, create_document
from tests.mailbox.mailbox_helpers import post

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


def test_a_new_citizen_logs_in_through_the_demo_idp_and_lands_on_onboarding(app, client):
    demo = DEMO_CITIZENS[1]

    answer = log_in_through_idp(client, citizen=demo.national_number)

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"
    citizen = db.session.scalars(select(Citizen)).one()
    assert citizen.national_number == demo.national_number
    assert (citizen.given_name, citizen.surname) == (demo.given_name, demo.surname)
    assert citizen.language == demo.language
    assert citizen.last_login_at is not None
    assert db.session.scalar(select(func.count()).select_from(SeenAssertion)) == 1
    protected = visit_protected_page(app, client)
    assert protected.status_code == 302
    assert protected.headers["Location"] == "/profile/welcome"
    inbox = client.get("/")
    assert (inbox.status_code, inbox.headers["Location"]) == (302, "/profile/welcome")


def test_the_session_after_login_is_a_fresh_server_side_session(client):
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (Android 14; Mobile) Firefox/133.0"
    with client.session_transaction() as session:
        session["planted"] = "by someone else"

    log_in_through_idp(client)

    with client.session_transaction() as session:
        assert "planted" not in session
        web_session = db.session.get(WebSession, uuid.UUID(session["sid"]))
    assert web_session is not None and web_session.ended_at is None
    # The browser is remembered, so that the citizen can tell their sessions apart.
    assert web_session.user_agent == "Mozilla/5.0 (Android 14; Mobile) Firefox/133.0"
    assert web_session.ip_address == "127.0.0.1"


def test_an_activated_citizen_returns_to_the_page_asked_for_before_login(app, client):
    demo = DEMO_CITIZENS[0]
    create_citizen(national_number=demo.national_number)
    db.session.commit()

    answer = log_in_through_idp(client, next_path="/profile/", citizen=demo.national_number)

    assert answer.headers["Location"] == "/profile/"
    assert visit_protected_page(app, client) == "the protected page"


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/steal",
        "https://evil.example/steal",
        "/\\evil.example/steal",
        "javascript:alert(1)",
        "/\t/evil.example",
        "evil.example",
    ],
)
def test_a_next_address_outside_ebox_is_ignored_after_login(client, next_path):
    answer = log_in_through_idp(client, next_path=next_path)

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_safe_next_keeps_local_paths_with_their_query():
    assert safe_next("/documents/12?page=2") == "/documents/12?page=2"
    assert safe_next("/") == "/"
    assert safe_next(None) is None


def test_an_existing_citizen_keeps_the_language_stored_but_gets_new_names(client):
    demo = DEMO_CITIZENS[0]  # the IdP says Dutch
    create_citizen(
        national_number=demo.national_number,
        given_name="Old",
        language="fr",
        last_login_at=utcnow(),
    )
    db.session.commit()

    log_in_through_idp(client, citizen=demo.national_number)

    citizen = db.session.scalars(select(Citizen)).one()
    db.session.refresh(citizen)
    assert citizen.language == "fr"
    assert citizen.given_name == demo.given_name


def test_the_language_chosen_before_a_first_login_wins_over_the_identity_provider(client):
    with client.session_transaction() as session:
        session["language"] = "de"

    log_in_through_idp(client, citizen=DEMO_CITIZENS[1].national_number)  # IdP: French

    assert db.session.scalars(select(Citizen)).one().language == "de"
    with client.session_transaction() as session:
        assert session["language"] == "de"


@pytest.mark.parametrize(
    ("value", "language"),
    [("nl", "nl"), ("NL", "nl"), ("fr-BE", "fr"), ("de", "de"), ("it", None), ("", None)],
)
def test_the_identity_provider_language_maps_to_an_ebox_language(value, language):
    assert language_from_idp(value) == language


def test_any_valid_national_number_can_be_typed_at_the_demo_idp(client):
    number = national_number.make("720101123")
    idp_url, _ = start_login(client)

    saml_response = answer_at_idp(client, idp_url, national_number=number, language="en")
    answer = post_to_acs(client, saml_response)

    assert answer.status_code == 302
    citizen = db.session.scalars(select(Citizen)).one()
    assert (citizen.national_number, citizen.language) == (number, "en")


def test_the_demo_idp_explains_an_invalid_typed_national_number(client):
    idp_url, _ = start_login(client)
    page = client.get(idp_url.removeprefix("http://localhost"))
    fields = {"national_number": "12345678901", "language": "nl"}
    fields.update(hidden_fields(page.get_data(as_text=True)))

    answer = client.post("/demo/idp/sso", data=fields)

    assert answer.status_code == 400
    assert "not a valid national register number" in answer.get_data(as_text=True)
    assert 'aria-invalid="true"' in answer.get_data(as_text=True)


def test_the_demo_idp_refuses_an_authn_request_whose_signature_was_changed(client):
    idp_url, _ = start_login(client)
    path = idp_url.removeprefix("http://localhost")
    tampered = path.replace("Signature=", "Signature=AAAA", 1)

    answer = client.get(tampered)

    assert answer.status_code == 400
    assert "does not come from eBox" in answer.get_data(as_text=True)


def test_the_demo_idp_refuses_an_authn_request_without_signature(client):
    idp_url, _ = start_login(client)
    path = idp_url.removeprefix("http://localhost").split("&SigAlg=")[0]

    assert client.get(path).status_code == 400


def test_the_service_provider_metadata_describes_our_entity_and_acs(client):
    answer = client.get("/auth/saml/metadata")

    assert answer.status_code == 200
    assert answer.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(answer.data)
    assert root.get("entityID") == "http://localhost/auth/saml/metadata"
    descriptor = root.find(f"{MD}SPSSODescriptor")
    assert descriptor.get("AuthnRequestsSigned") == "true"
    assert descriptor.get("WantAssertionsSigned") == "true"
    acs = descriptor.find(f"{MD}AssertionConsumerService")
    assert acs.get("Location") == "http://localhost/auth/saml/acs"
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert descriptor.find(f"{MD}KeyDescriptor") is not None


def test_the_demo_idp_metadata_is_served_with_its_signing_certificate(client):
    answer = client.get("/demo/idp/metadata")

    root = etree.fromstring(answer.data)
    assert root.get("entityID") == "http://localhost/demo/idp/metadata"
    assert root.find(f"{MD}IDPSSODescriptor/{MD}KeyDescriptor") is not None


def test_the_login_page_offers_the_federation_login_and_keeps_next(client):
    page = client.get("/auth/login?next=/documents/7").get_data(as_text=True)

    assert "Log in with eID / itsme / CSAM" in page
    assert 'href="/auth/saml/start?next=/documents/7"' in page
    assert "Demonstration mode" in page


def test_the_session_keeps_how_the_identity_provider_authenticated_the_citizen(client):
    before = utcnow()
    log_in_through_idp(client)

    with client.session_transaction() as session:
        web_session = db.session.get(WebSession, uuid.UUID(session["sid"]))
    assert web_session is not None
    assert web_session.identity_provider.endswith("/demo/idp/metadata")
    assert web_session.authn_context == AUTHN_PASSWORD_PROTECTED
    assert web_session.authenticated_at is not None
    assert abs((web_session.authenticated_at - before).total_seconds()) < 60
    seen = db.session.get(SeenAssertion, web_session.assertion_id)
    assert seen is not None  # the very assertion the login used


def test_opening_registered_mail_seals_how_the_recipient_logged_in(app, client):
    demo = DEMO_CITIZENS[0]
    citizen = create_citizen(national_number=demo.national_number)
    document = create_document(citizen, is_registered=True)
    db.session.commit()
    log_in_through_idp(client, citizen=demo.national_number)
    with client.session_transaction() as session:
        web_session = db.session.get(WebSession, uuid.UUID(session["sid"]))
    assert web_session is not None

    # The requests share the test's application context: forget the CSRF token cached in
    # flask.g before the login cleared the session.
    g.pop("csrf_token", None)
    assert post(client, f"/documents/{document.id}/receipt").status_code == 303

    handover = etree.fromstring(chain_of(document.id)[-1].xml)
    login = handover.find("ev:Recipient/ev:Authentication", NAMESPACES)
    assert login is not None
    assert login.findtext("ev:IdentityProvider", namespaces=NAMESPACES) == (
        web_session.identity_provider
    )
    assert login.findtext("ev:AuthnContextClassRef", namespaces=NAMESPACES) == (
        AUTHN_PASSWORD_PROTECTED
    )
    assert login.findtext("ev:AssertionId", namespaces=NAMESPACES) == web_session.assertion_id
