"""The demo SAML identity provider: stands in for the eID federation outside production.

It answers eBox's own signed AuthnRequests only, lets the visitor be a demo citizen (or any
valid national number), and posts back a Response whose assertion is signed with RSA-SHA256,
as the federation does. The service provider trusts it through metadata generated here, in
the same process: no key or metadata file to copy around.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from saml2 import BINDING_HTTP_REDIRECT, class_name, saml
from saml2.attribute_converter import do_ava
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_TRANSIENT
from saml2.samlp import Response as SamlResponse
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary, pre_signature_part, signed_instance_factory
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from ebox import national_number
from ebox.accounts import saml as sp
from ebox.config import LANGUAGES, current_settings
from ebox.demo import data as demo_data

bp = Blueprint("demo_idp", __name__, url_prefix="/demo/idp")

ASSERTION_LIFETIME = timedelta(minutes=5)
# The service provider's metadata as the identity provider last fetched it, when set in the
# application's extensions (tests of a key rollover: a federation refreshes metadata on its own
# schedule). Unset, the demo IdP reads eBox's current metadata for every request.
KNOWN_SP_METADATA = "ebox.demo.idp.known_sp_metadata"


@dataclass(frozen=True)
class DemoCitizen:
    national_number: str
    given_name: str
    surname: str
    language: str


# The citizens the demo data gives documents to, so that logging in as one shows a full inbox.
DEMO_CITIZENS = tuple(
    DemoCitizen(citizen.national_number, citizen.given_name, citizen.surname, citizen.language)
    for citizen in demo_data.DEMO_CITIZENS
)


@dataclass(frozen=True)
class ResponseOptions:
    """How to depart from a correct response: tests forge bad ones with these."""

    audience: str | None = None  # default: the SP's entity id
    recipient: str | None = None  # default: the SP's ACS URL
    destination: str | None = None  # default: the SP's ACS URL
    valid_from: datetime | None = None  # default: now
    valid_until: datetime | None = None  # default: valid_from + ASSERTION_LIFETIME
    sign: bool = True
    sign_alg: str = SIG_RSA_SHA256
    digest_alg: str = DIGEST_SHA256
    key_directory: Path | None = None  # sign with another key pair (default: the IdP's)


# --- configuration ---------------------------------------------------------------------


def _key_pair(directory: Path | None = None) -> sp.KeyPair:
    directory = directory or current_settings().instance_path / "saml" / "idp"
    return sp.ensure_key_pair(directory, "eBox demo identity provider")


def _config(*, with_sp: bool, key_directory: Path | None = None) -> IdPConfig:
    keys = _key_pair(key_directory)
    sso_url = sp.external_url("demo_idp.sso")
    idp = {
        "name": "eBox demo identity provider",
        "endpoints": {"single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]},
        "name_id_format": [NAMEID_FORMAT_TRANSIENT],
        "want_authn_requests_signed": True,
        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC}},
    }
    config = IdPConfig()
    config.load(
        {
            "entityid": sp.external_url("demo_idp.metadata"),
            "service": {"idp": idp},
            "key_file": str(keys.key_path),
            "cert_file": str(keys.cert_path),
            "xmlsec_binary": get_xmlsec_binary(),
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "accepted_time_diff": 60,
            "metadata": {"inline": [_known_sp_metadata()]} if with_sp else {},
        }
    )
    return config


def _known_sp_metadata() -> str:
    known: str | None = current_app.extensions.get(KNOWN_SP_METADATA)
    return known if known is not None else sp.sp_metadata_xml()


def _server(key_directory: Path | None = None) -> Server:
    return Server(config=_config(with_sp=True, key_directory=key_directory))


def demo_idp_metadata() -> str:
    """The demo IdP's metadata: what eBox's service provider trusts in demo mode."""
    return str(create_metadata_string(None, config=_config(with_sp=False)).decode("utf-8"))


# --- responses -------------------------------------------------------------------------


def build_response(
    *,
    attributes: Mapping[str, str],
    in_response_to: str | None,
    options: ResponseOptions | None = None,
) -> str:
    """A SAML Response for eBox's SP carrying attributes, its assertion signed (XML text)."""
    options = options or ResponseOptions()
    server = _server(options.key_directory)
    sp_entity_id = current_settings().saml_sp_entity_id
    acs = sp.acs_url()
    response = server.create_authn_response(
        identity={},
        in_response_to=in_response_to,
        destination=options.destination or acs,
        sp_entity_id=sp_entity_id,
        userid=attributes.get(current_settings().saml_attr_national_number, "anonymous"),
        authn={"class_ref": saml.AUTHN_PASSWORD_PROTECTED, "authn_auth": server.config.entityid},
        sign_assertion=False,
        sign_response=False,
    )
    assertion = _only_assertion(response)
    _set_attributes(assertion, attributes)
    _set_conditions(assertion, options, audience=options.audience or sp_entity_id)
    _set_confirmation(assertion, options, recipient=options.recipient or acs)
    if not options.sign:
        return str(response.to_string().decode("utf-8"))
    assertion.signature = pre_signature_part(
        assertion.id,
        server.sec.my_cert,
        1,
        sign_alg=options.sign_alg,
        digest_alg=options.digest_alg,
    )
    return str(
        signed_instance_factory(response, server.sec, [(class_name(assertion), assertion.id)])
    )


def encode_response(xml: str) -> str:
    """The form value of the HTTP-POST binding."""
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def _only_assertion(response: SamlResponse) -> saml.Assertion:
    assertion = response.assertion
    return assertion[0] if isinstance(assertion, list) else assertion


def _window(options: ResponseOptions) -> tuple[str, str]:
    start = options.valid_from or datetime.now(UTC)
    end = options.valid_until or start + ASSERTION_LIFETIME
    return _saml_time(start), _saml_time(end)


def _saml_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_attributes(assertion: saml.Assertion, attributes: Mapping[str, str]) -> None:
    values = [
        saml.Attribute(name=name, name_format=NAME_FORMAT_BASIC, attribute_value=do_ava(value))
        for name, value in attributes.items()
    ]
    assertion.attribute_statement = [saml.AttributeStatement(attribute=values)]


def _set_conditions(assertion: saml.Assertion, options: ResponseOptions, audience: str) -> None:
    not_before, not_on_or_after = _window(options)
    assertion.conditions = saml.Conditions(
        not_before=not_before,
        not_on_or_after=not_on_or_after,
        audience_restriction=[saml.AudienceRestriction(audience=[saml.Audience(text=audience)])],
    )
    if options.valid_from is not None:
        assertion.issue_instant = not_before


def _set_confirmation(assertion: saml.Assertion, options: ResponseOptions, recipient: str) -> None:
    _, not_on_or_after = _window(options)
    for confirmation in assertion.subject.subject_confirmation:
        confirmation.subject_confirmation_data.recipient = recipient
        confirmation.subject_confirmation_data.not_on_or_after = not_on_or_after


# --- views -----------------------------------------------------------------------------


@bp.get("/metadata")
def metadata() -> ResponseReturnValue:
    return Response(demo_idp_metadata(), mimetype="application/samlmetadata+xml")


@bp.get("/sso")
def sso() -> ResponseReturnValue:
    saml_fields = _saml_fields(request.args)
    if _authn_request_id(saml_fields) is None:
        return _refuse()
    return render_template("demo/idp_login.html", **_page_context(saml_fields))


@bp.post("/sso")
def sso_answer() -> ResponseReturnValue:
    saml_fields = _saml_fields(request.form)
    request_id = _authn_request_id(saml_fields)
    if request_id is None:
        return _refuse()
    person, error = _chosen_person()
    if person is None:
        page = render_template("demo/idp_login.html", error=error, **_page_context(saml_fields))
        return page, 400
    xml = build_response(attributes=_attributes_of(person), in_response_to=request_id)
    return render_template(
        "demo/idp_post.html",
        acs_url=sp.acs_url(),
        saml_response=encode_response(xml),
        relay_state=saml_fields.get("RelayState", ""),
    )


def _saml_fields(source: Mapping[str, str]) -> dict[str, str]:
    names = ("SAMLRequest", "RelayState", "SigAlg", "Signature")
    return {name: source[name] for name in names if name in source}


def _authn_request_id(fields: Mapping[str, str]) -> str | None:
    """The id of a valid AuthnRequest signed by eBox's service provider, else None."""
    if "SAMLRequest" not in fields:
        return None
    try:
        parsed = _server().parse_authn_request(
            fields["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            relay_state=fields.get("RelayState"),
            sigalg=fields.get("SigAlg"),
            signature=fields.get("Signature"),
        )
    except Exception:  # pysaml2 raises many types for a bad request
        current_app.logger.warning("demo IdP: refused an AuthnRequest", exc_info=True)
        return None
    message = parsed.message if parsed is not None else None
    if message is None or message.issuer.text != current_settings().saml_sp_entity_id:
        return None
    if message.assertion_consumer_service_url not in (None, sp.acs_url()):
        return None
    return str(message.id)


def _chosen_person() -> tuple[DemoCitizen | None, str | None]:
    chosen = request.form.get("citizen")
    if chosen:
        known = {citizen.national_number: citizen for citizen in DEMO_CITIZENS}
        return known.get(chosen), None if chosen in known else _("Choose a demo citizen.")
    try:
        number = national_number.normalise(request.form.get("national_number", ""))
    except national_number.InvalidNationalNumber:
        return None, _(
            "This is not a valid national register number: 11 digits, the last two a check."
        )
    language = request.form.get("language", "")
    language = language if language in LANGUAGES else "nl"
    return DemoCitizen(number, "Demo", "Citizen", language), None


def _attributes_of(person: DemoCitizen) -> dict[str, str]:
    settings = current_settings()
    return {
        settings.saml_attr_national_number: person.national_number,
        settings.saml_attr_given_name: person.given_name,
        settings.saml_attr_surname: person.surname,
        settings.saml_attr_language: person.language,
    }


def _page_context(saml_fields: Mapping[str, str]) -> dict[str, Any]:
    return {"saml_fields": saml_fields, "citizens": DEMO_CITIZENS, "languages": LANGUAGES}


def _refuse() -> ResponseReturnValue:
    message = _("This login request does not come from eBox, or it was changed on the way.")
    return render_template("demo/idp_refused.html", message=message), 400
