"""Drive the real SAML login: eBox's SP, the demo IdP, and responses forged with its key."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from flask import Flask, g
from flask.testing import FlaskClient
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from werkzeug.test import TestResponse

from ebox.accounts.sessions import load_session, login_required
from ebox.accounts.views import PENDING_COOKIE
from ebox.demo.idp import DEMO_CITIZENS, ResponseOptions, build_response, encode_response
from ebox.demo.idp import _server as demo_idp_server

ACS_PATH = "/auth/saml/acs"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"


def hidden_fields(page: str) -> dict[str, str]:
    pairs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in pairs}


def csrf_token(client: FlaskClient) -> str:
    # The app fixture's application context outlives requests, and with it `g`, where
    # Flask-WTF caches the token of an earlier session: drop it, as a new request would.
    g.pop("csrf_token", None)
    # Any page built on base.html carries one (language switcher, logout form).
    page = client.get("/no-such-page").get_data(as_text=True)
    return hidden_fields(page)["csrf_token"]


def start_login(client: FlaskClient, next_path: str | None = None) -> tuple[str, str]:
    """GET /auth/saml/start: the IdP URL the browser is sent to, and the AuthnRequest id."""
    query = {"next": next_path} if next_path is not None else {}
    response = client.get("/auth/saml/start", query_string=query)
    assert response.status_code == 302
    location = response.headers["Location"]
    encoded = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    request_xml = OneLogin_Saml2_Utils.decode_base64_and_inflate(encoded).decode("utf-8")
    match = re.search(r'\sID="([^"]+)"', request_xml)
    assert match is not None
    return location, match.group(1)


def answer_at_idp(client: FlaskClient, idp_url: str, **choice: str) -> str:
    """Open the demo IdP's page, make a choice, return the SAMLResponse it posts back."""
    parts = urlsplit(idp_url)
    page = client.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200, page.get_data(as_text=True)
    fields = hidden_fields(page.get_data(as_text=True))
    fields.update(choice or {"citizen": DEMO_CITIZENS[0].national_number})
    answer = client.post("/demo/idp/sso", data=fields)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return hidden_fields(answer.get_data(as_text=True))["SAMLResponse"]


def post_to_acs(client: FlaskClient, saml_response: str) -> TestResponse:
    return client.post(ACS_PATH, data={"SAMLResponse": saml_response})


def log_in_through_idp(
    client: FlaskClient, next_path: str | None = None, **choice: str
) -> TestResponse:
    """The whole round trip a browser makes; returns the ACS answer."""
    idp_url, _ = start_login(client, next_path)
    return post_to_acs(client, answer_at_idp(client, idp_url, **choice))


def forged_response(
    app: Flask,
    *,
    in_response_to: str | None,
    attributes: dict[str, str] | None = None,
    options: ResponseOptions | None = None,
) -> str:
    """A response built by the demo IdP's code, with whatever departures options ask for."""
    settings = app.config["EBOX"]
    citizen = DEMO_CITIZENS[1]
    values = attributes or {
        settings.saml_attr_national_number: citizen.national_number,
        settings.saml_attr_given_name: citizen.given_name,
        settings.saml_attr_surname: citizen.surname,
        settings.saml_attr_language: citizen.language,
    }
    with app.test_request_context():
        xml = build_response(attributes=values, in_response_to=in_response_to, options=options)
    return encode_response(xml)


def encrypted_response(app: Flask, *, in_response_to: str, cert_pem: str) -> str:
    """A correct signed response whose assertion the IdP then encrypted to cert_pem (pysaml2,
    with xmlsec1), as an IdP that encrypts assertions sends it."""
    settings = app.config["EBOX"]
    citizen = DEMO_CITIZENS[1]
    values = {
        settings.saml_attr_national_number: citizen.national_number,
        settings.saml_attr_given_name: citizen.given_name,
        settings.saml_attr_surname: citizen.surname,
        settings.saml_attr_language: citizen.language,
    }
    with app.test_request_context():
        root = etree.fromstring(
            build_response(attributes=values, in_response_to=in_response_to).encode("utf-8")
        )
        assertion = root.find(f"{{{SAML_NS}}}Assertion")
        assert assertion is not None
        holder = etree.Element(f"{{{SAML_NS}}}EncryptedAssertion")
        assertion.addprevious(holder)
        holder.append(assertion)  # what pysaml2 encrypts: the assertion in its holder
        xml = demo_idp_server()._encrypt_assertion(cert_pem, None, etree.tostring(root).decode())
    return encode_response(str(xml))


def pending_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(PENDING_COOKIE, path=ACS_PATH)
    assert cookie is not None
    return cookie.value


def restore_pending_cookie(client: FlaskClient, value: str) -> None:
    client.set_cookie(PENDING_COOKIE, value, path=ACS_PATH, httponly=True)


def visit_protected_page(app: Flask, client: FlaskClient) -> TestResponse | str:
    """What a @login_required view answers to this browser (session cookie included)."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    headers = {"Cookie": f"{cookie.key}={cookie.value}"} if cookie else {}
    with app.test_request_context("/somewhere", headers=headers):
        load_session()
        return login_required(lambda: "the protected page")()  # type: ignore[no-any-return]
