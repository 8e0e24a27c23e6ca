"""The SAML service provider: eBox's side of the login through the eID federation.

python3-saml checks the signature, the schema and most conditions; on top of it this module
checks exactly (not by prefix or substring) what identifies this one login: the audience, the
destination and recipient, the request it answers and the validity window.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import current_app, request, url_for
from flask_babel import lazy_gettext as _l
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils, OneLogin_Saml2_ValidationError
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from ebox import national_number
from ebox.config import LANGUAGES, current_settings
from ebox.errors import ConfigError

log = logging.getLogger(__name__)

# Clocks of the identity provider and ours may differ a little; not more.
CLOCK_SKEW = timedelta(seconds=60)

SECURITY: dict[str, Any] = {
    "authnRequestsSigned": True,
    "wantAssertionsSigned": True,
    "wantMessagesSigned": False,
    "wantNameId": True,
    "wantAttributeStatement": True,
    "wantXMLValidation": True,
    "rejectDeprecatedAlgorithm": True,
    "rejectUnsolicitedResponsesWithInResponseTo": True,
    "requestedAuthnContext": False,
    "signatureAlgorithm": Saml.RSA_SHA256,
    "digestAlgorithm": Saml.SHA256,
}

_TIMING_ERRORS = {
    OneLogin_Saml2_ValidationError.ASSERTION_EXPIRED,
    OneLogin_Saml2_ValidationError.ASSERTION_TOO_EARLY,
    OneLogin_Saml2_ValidationError.SESSION_EXPIRED,
}

MESSAGE_UNTRUSTED = _l("The answer of the login service could not be trusted. Please log in again.")
MESSAGE_EXPIRED = _l("The answer of the login service has expired. Please log in again.")
MESSAGE_NOT_LOGGED_IN = _l(
    "The login service did not log you in (the login was cancelled or failed). Please try again."
)
MESSAGE_MALFORMED = _l("The answer of the login service could not be read. Please log in again.")


# Where a plug-in (the demo package) puts a function returning the metadata of the identity
# provider to trust when EBOX_SAML_IDP is 'demo'.
IDP_METADATA_PROVIDER = "ebox.saml.idp_metadata_provider"


class LoginRefused(Exception):
    """A login that must not happen. `reason` goes to the log, `message` to the citizen."""

    def __init__(self, reason: str, message: Any = MESSAGE_UNTRUSTED, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class VerifiedLogin:
    """What a valid assertion says about the citizen, and how long it could be replayed."""

    assertion_id: str
    expires_at: datetime
    national_number: str
    given_name: str
    surname: str
    language: str | None
    # How the citizen proved who they are: kept with the session, sealed into registered
    # mail's evidence of handover.
    identity_provider: str = ""
    authn_context: str = ""
    authenticated_at: datetime | None = None


def external_url(endpoint: str, **values: Any) -> str:
    """Our public address of an endpoint, from EBOX_PUBLIC_URL (never from the Host header)."""
    path = url_for(endpoint, **values)
    return current_settings().public_url + path[len(request.script_root) :]


def acs_url() -> str:
    return external_url("accounts.acs")


def saml_request_data() -> dict[str, Any]:
    """The request as python3-saml sees it, placed at our public address.

    Scheme, host, port and path prefix come from EBOX_PUBLIC_URL, so that behind a TLS-
    terminating proxy the Destination and Recipient are compared with the address the
    identity provider was given, not with the internal one.
    """
    public = urlsplit(current_settings().public_url)
    return {
        "https": "on" if public.scheme == "https" else "off",
        "http_host": public.netloc,
        "script_name": public.path,
        "path_info": request.path,
        "get_data": request.args.to_dict(),
        "post_data": request.form.to_dict(),
    }


# --- keys and settings -------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate, as PEM files."""

    key_path: Path
    cert_path: Path

    def key_pem(self) -> str:
        return self.key_path.read_text(encoding="ascii")

    def cert_pem(self) -> str:
        return self.cert_path.read_text(encoding="ascii")


def ensure_key_pair(directory: Path, common_name: str) -> KeyPair:
    """The key pair kept in directory, made (RSA-2048, self-signed) the first time.

    The pair is written into a temporary directory that is then renamed: processes
    starting together never see a key without its certificate, or a mixed pair.
    """
    pair = KeyPair(directory / "key.pem", directory / "cert.pem")
    if not pair.cert_path.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=directory.parent))
        _write_key_pair(staging, common_name)
        try:
            os.rename(staging, directory)
            log.info("generated a self-signed SAML key pair in %s", directory)
        except OSError:  # another process was first: keep its pair
            shutil.rmtree(staging, ignore_errors=True)
    return pair


def _write_key_pair(directory: Path, common_name: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "key.pem").write_bytes(key_pem)
    (directory / "key.pem").chmod(0o600)
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def sp_key_pair() -> KeyPair:
    settings = current_settings()
    if settings.saml_sp_key and settings.saml_sp_cert:
        return KeyPair(Path(settings.saml_sp_key), Path(settings.saml_sp_cert))
    if settings.is_production:
        raise ConfigError("EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT are required")
    return ensure_key_pair(settings.instance_path / "saml" / "sp", "eBox service provider")


def _sp_data() -> dict[str, Any]:
    keys = sp_key_pair()
    data = {
        "entityId": current_settings().saml_sp_entity_id,
        "assertionConsumerService": {"url": acs_url(), "binding": Saml.BINDING_HTTP_POST},
        "NameIDFormat": Saml.NAMEID_TRANSIENT,
        "x509cert": keys.cert_pem(),
        "privateKey": keys.key_pem(),
    }
    next_cert = sp_next_cert_pem()
    if next_cert:
        # Published in the metadata as a second signing key (python3-saml's "x509certNew");
        # AuthnRequests are still signed with privateKey only (see Key rotation in
        # docs/operations.md).
        data["x509certNew"] = next_cert
    return data


def sp_next_cert_pem() -> str | None:
    """The second certificate of a key rollover (EBOX_SAML_SP_NEXT_CERT), if one is set."""
    path = current_settings().saml_sp_next_cert
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="ascii")
    except OSError as error:
        raise ConfigError(
            f"EBOX_SAML_SP_NEXT_CERT: cannot read {path!r} ({error.strerror})"
        ) from error


def _idp_data() -> dict[str, Any]:
    """The identity provider we trust, read once per process from its metadata."""
    cache = current_app.extensions.setdefault("ebox.saml", {})
    if "idp" not in cache:
        cache["idp"] = OneLogin_Saml2_IdPMetadataParser.parse(_idp_metadata_xml())["idp"]
    return dict(cache["idp"])


def _idp_metadata_xml() -> str:
    settings = current_settings()
    if settings.uses_demo_idp:
        provider: Callable[[], str] | None = current_app.extensions.get(IDP_METADATA_PROVIDER)
        if provider is None:  # production never plugs the demo in
            raise ConfigError("EBOX_SAML_IDP is 'demo' but the demo identity provider is absent")
        return provider()
    return Path(settings.saml_idp_metadata).read_text(encoding="utf-8")


def sp_settings() -> OneLogin_Saml2_Settings:
    data = {"strict": True, "debug": False, "sp": _sp_data(), "idp": _idp_data()}
    return OneLogin_Saml2_Settings({**data, "security": dict(SECURITY)})


def sp_metadata_xml() -> str:
    """Our metadata, for the federation (and the demo IdP). It needs no IdP settings."""
    data = {"strict": True, "sp": _sp_data(), "security": dict(SECURITY)}
    settings = OneLogin_Saml2_Settings(data, sp_validation_only=True)
    return str(settings.get_sp_metadata().decode("utf-8"))


# --- the login -----------------------------------------------------------------------------


def start_login(relay_state: str) -> tuple[str, str]:
    """A signed redirect-binding AuthnRequest: the URL to send the browser to, and its id."""
    auth = OneLogin_Saml2_Auth(saml_request_data(), sp_settings())
    url = auth.login(return_to=relay_state)
    return str(url), str(auth.get_last_request_id())


def verify_response(*, saml_response: str, request_id: str) -> VerifiedLogin:
    """The login an IdP response proves, or LoginRefused. Nothing is written here."""
    response = _parse_response(saml_response)
    try:
        response.is_valid(saml_request_data(), request_id, raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as error:
        raise LoginRefused(
            f"invalid response: {error}", _refusal_message(error, response)
        ) from None
    except Exception as error:  # xmlsec and lxml raise their own types
        raise LoginRefused(f"unverifiable response: {error!r}") from None
    expires_at = _check_conditions(response, request_id)
    return _read_login(response, expires_at)


def _parse_response(saml_response: str) -> OneLogin_Saml2_Response:
    if not saml_response:
        raise LoginRefused("no SAMLResponse in the post", MESSAGE_MALFORMED, 400)
    try:
        document = OneLogin_Saml2_XML.to_etree(OneLogin_Saml2_Utils.b64decode(saml_response))
        encrypted = OneLogin_Saml2_XML.query(document, "//saml:EncryptedAssertion")
    except Exception as error:  # base64, XML syntax, forbidden DTD or entities
        raise LoginRefused(f"unreadable response: {error!r}", MESSAGE_MALFORMED, 400) from None
    if encrypted:
        # Our metadata offers no encryption key, and python3-saml would decrypt with the one
        # current key only (an assertion encrypted to the other certificate of a key rollover
        # could not be read): an encrypted assertion is refused, whatever it was encrypted to.
        raise LoginRefused("encrypted assertion: eBox publishes no encryption key, accepts none")
    try:
        return OneLogin_Saml2_Response(sp_settings(), saml_response)
    except Exception as error:  # base64, XML syntax, forbidden DTD or entities
        raise LoginRefused(f"unreadable response: {error!r}", MESSAGE_MALFORMED, 400) from None


def _refusal_message(error: OneLogin_Saml2_ValidationError, response: Any) -> Any:
    if error.code == OneLogin_Saml2_ValidationError.STATUS_CODE_IS_NOT_SUCCESS:
        return MESSAGE_NOT_LOGGED_IN
    if error.code in _TIMING_ERRORS or _looks_expired(response):
        return MESSAGE_EXPIRED
    return MESSAGE_UNTRUSTED


def _looks_expired(response: OneLogin_Saml2_Response) -> bool:
    """Only to word the refusal: an unverified document's expiry decides nothing else."""
    try:
        nodes = _assertion_nodes(response, "/saml:Conditions")
        not_on_or_after = _saml_time(nodes[0].get("NotOnOrAfter")) if nodes else None
    except Exception:
        return False
    return not_on_or_after is not None and not_on_or_after <= datetime.now(UTC)


def _assertion_nodes(response: OneLogin_Saml2_Response, path: str) -> list[Any]:
    # is_valid() has made sure there is exactly one assertion, and that it is the signed one.
    nodes = OneLogin_Saml2_XML.query(response.document, "/samlp:Response/saml:Assertion" + path)
    return list(nodes)


def _check_conditions(response: OneLogin_Saml2_Response, request_id: str) -> datetime:
    """Exact checks python3-saml leaves loose. Returns when the assertion stops being valid."""
    expected_acs = acs_url()
    if response.get_in_response_to() != request_id:
        raise LoginRefused("response does not answer our pending request")
    if response.document.get("Destination") != expected_acs:
        raise LoginRefused("response Destination is not our ACS URL")
    audiences = response.get_audiences()
    if not audiences or set(audiences) != {current_settings().saml_sp_entity_id}:
        raise LoginRefused("assertion Audience is not our entity id")
    _check_subject_confirmation(response, request_id, expected_acs)
    return _check_validity_window(response)


def _check_subject_confirmation(
    response: OneLogin_Saml2_Response, request_id: str, expected_acs: str
) -> None:
    path = "/saml:Subject/saml:SubjectConfirmation[@Method='%s']/saml:SubjectConfirmationData"
    for data in _assertion_nodes(response, path % Saml.CM_BEARER):
        if data.get("Recipient") == expected_acs and data.get("InResponseTo") == request_id:
            return
    raise LoginRefused("no bearer SubjectConfirmation for our ACS URL and request")


def _check_validity_window(response: OneLogin_Saml2_Response) -> datetime:
    conditions = _assertion_nodes(response, "/saml:Conditions")[0]
    not_before = _saml_time(conditions.get("NotBefore"))
    not_on_or_after = _saml_time(conditions.get("NotOnOrAfter"))
    if not_on_or_after is None:
        raise LoginRefused("assertion has no NotOnOrAfter: it could be replayed forever")
    now = datetime.now(UTC)
    if not_before is not None and now + CLOCK_SKEW < not_before:
        raise LoginRefused("assertion is not valid yet", MESSAGE_EXPIRED)
    if now - CLOCK_SKEW >= not_on_or_after:
        raise LoginRefused("assertion has expired", MESSAGE_EXPIRED)
    confirmed_until = response.get_assertion_not_on_or_after()
    latest = max(not_on_or_after, _from_timestamp(confirmed_until) or not_on_or_after)
    return latest + CLOCK_SKEW


def _saml_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return _from_timestamp(OneLogin_Saml2_Utils.parse_SAML_to_time(value))


def _from_timestamp(value: int | float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


# --- attributes ----------------------------------------------------------------------------


def _read_login(response: OneLogin_Saml2_Response, expires_at: datetime) -> VerifiedLogin:
    settings = current_settings()
    attributes = response.get_attributes()
    raw_number = _single(attributes, settings.saml_attr_national_number)
    try:
        number = national_number.normalise(raw_number)
    except national_number.InvalidNationalNumber as error:
        message = _l("The login service did not give a valid national register number.")
        raise LoginRefused(f"invalid national number: {error}", message) from None
    return VerifiedLogin(
        assertion_id=str(response.get_assertion_id()),
        expires_at=expires_at,
        national_number=number,
        given_name=_single(attributes, settings.saml_attr_given_name)[:200],
        surname=_single(attributes, settings.saml_attr_surname)[:200],
        language=language_from_idp(_single(attributes, settings.saml_attr_language)),
        identity_provider=_issuer(response)[:500],
        authn_context=_authn_text("/saml:AuthnContext/saml:AuthnContextClassRef", response)[:500],
        authenticated_at=_saml_time(_authn_attribute("AuthnInstant", response)),
    )


def _issuer(response: OneLogin_Saml2_Response) -> str:
    issuers = response.get_issuers()
    return str(issuers[0]) if issuers else ""


def _authn_text(path: str, response: OneLogin_Saml2_Response) -> str:
    nodes = _assertion_nodes(response, "/saml:AuthnStatement" + path)
    return (nodes[0].text or "").strip() if nodes else ""


def _authn_attribute(name: str, response: OneLogin_Saml2_Response) -> str | None:
    nodes = _assertion_nodes(response, "/saml:AuthnStatement")
    return nodes[0].get(name) if nodes else None


def _single(attributes: dict[str, list[Any]], name: str) -> str:
    values = [value for value in attributes.get(name, []) if isinstance(value, str)]
    return values[0] if values else ""


def language_from_idp(value: str) -> str | None:
    """ "nl", "NL", "fr-BE" → a language of eBox; anything else → None (keep the default)."""
    code = value.strip()[:2].lower()
    return code if code in LANGUAGES else None
