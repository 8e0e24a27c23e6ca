"""A rollover of the service provider's SAML key, phase by phase as docs/operations.md says,
against the real pysaml2 identity provider: it verifies eBox's signed AuthnRequests with the
certificates of eBox's metadata as it last fetched it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from flask import Flask, g
from flask.testing import FlaskClient
from lxml import etree

from ebox.accounts.saml import KeyPair, ensure_key_pair
from ebox.demo.idp import KNOWN_SP_METADATA
from tests.accounts.saml_helpers import (
    encrypted_response,
    log_in_through_idp,
    post_to_acs,
    start_login,
)

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"

Phase = Callable[..., None]


@pytest.fixture
def key_pairs(tmp_path: Path) -> tuple[KeyPair, KeyPair]:
    return (
        ensure_key_pair(tmp_path / "sp-2025", "eBox service provider 2025"),
        ensure_key_pair(tmp_path / "sp-2026", "eBox service provider 2026"),
    )


@pytest.fixture
def phase(app: Flask) -> Iterator[Phase]:
    """Set the SP's key, certificate and next certificate as a restart with those settings
    would (checked as at start), and put everything back afterwards."""
    settings = app.config["EBOX"]
    saved = (settings.saml_sp_key, settings.saml_sp_cert, settings.saml_sp_next_cert)

    def set_phase(current: KeyPair, next_cert: Path | None = None) -> None:
        settings.saml_sp_key = str(current.key_path)
        settings.saml_sp_cert = str(current.cert_path)
        settings.saml_sp_next_cert = str(next_cert) if next_cert else ""
        settings.check_key_files()

    yield set_phase
    settings.saml_sp_key, settings.saml_sp_cert, settings.saml_sp_next_cert = saved
    app.extensions.pop(KNOWN_SP_METADATA, None)


def published(app: Flask) -> list[tuple[str, str]]:
    """(use, subject common name) of every KeyDescriptor of /auth/saml/metadata."""
    answer = app.test_client().get("/auth/saml/metadata")
    assert answer.status_code == 200
    descriptor = etree.fromstring(answer.data).find(f"{MD}SPSSODescriptor")
    found = []
    for key in descriptor.findall(f"{MD}KeyDescriptor"):
        text = key.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
        certificate = x509.load_der_x509_certificate(base64.b64decode(text))
        name = certificate.subject.rfc4514_string().removeprefix("CN=")
        found.append((key.get("use"), name))
    return sorted(found)


def metadata(app: Flask) -> str:
    return app.test_client().get("/auth/saml/metadata").get_data(as_text=True)


def browser(app: Flask) -> FlaskClient:
    """A new browser. The app fixture's application context outlives requests, and with it
    `g`, where Flask-WTF caches the CSRF token of the browser before: drop it."""
    g.pop("csrf_token", None)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def logs_in(app: Flask) -> bool:
    """A whole login through the IdP in a new browser: True when it lands in eBox."""
    answer = log_in_through_idp(browser(app))
    return answer.status_code == 302 and answer.headers["Location"] == "/"


def idp_refuses_the_request(app: Flask) -> bool:
    client = browser(app)
    idp_url, _ = start_login(client)
    page = client.get(idp_url.removeprefix("http://localhost"))
    return page.status_code == 400 and "does not come from eBox" in page.get_data(as_text=True)


def test_the_metadata_carries_both_certificates_during_the_overlap(
    app: Flask, key_pairs: tuple[KeyPair, KeyPair], phase: Phase
) -> None:
    old, new = key_pairs
    old_name, new_name = "eBox service provider 2025", "eBox service provider 2026"

    phase(old)
    assert published(app) == [("signing", old_name)]

    phase(old, next_cert=new.cert_path)  # 1. publish the next certificate
    assert published(app) == [("signing", old_name), ("signing", new_name)]

    phase(new, next_cert=old.cert_path)  # 3. switch: the old one stays published a while
    assert published(app) == [("signing", old_name), ("signing", new_name)]

    phase(new)  # 4. remove the old one
    assert published(app) == [("signing", new_name)]
    # No encryption key is ever published: the IdP has no certificate to encrypt to.
    assert 'use="encryption"' not in metadata(app)


def test_an_idp_that_fetched_the_overlap_metadata_accepts_the_old_key_then_the_new(
    app: Flask, key_pairs: tuple[KeyPair, KeyPair], phase: Phase
) -> None:
    old, new = key_pairs
    phase(old)
    before_rollover = metadata(app)
    phase(old, next_cert=new.cert_path)
    overlap = metadata(app)
    app.extensions[KNOWN_SP_METADATA] = overlap  # 2. the federation refreshes our metadata

    assert logs_in(app)  # AuthnRequests still signed with the old key

    phase(new, next_cert=old.cert_path)  # 3. the switch; the federation still has `overlap`
    assert logs_in(app)  # signed with the new key, which the IdP already knows

    # Without step 2 the switch locks everybody out: an IdP that knows the old certificate
    # alone refuses what the new key signs.
    app.extensions[KNOWN_SP_METADATA] = before_rollover
    assert idp_refuses_the_request(app)


def test_logins_work_in_every_phase_once_the_idp_has_the_metadata(
    app: Flask, key_pairs: tuple[KeyPair, KeyPair], phase: Phase
) -> None:
    old, new = key_pairs
    phases = [
        (old, None),
        (old, new.cert_path),
        (new, old.cert_path),
        (new, None),
    ]
    for current, next_cert in phases:
        phase(current, next_cert=next_cert)
        app.extensions[KNOWN_SP_METADATA] = metadata(app)
        assert logs_in(app), (current.cert_path, next_cert)


def test_during_a_rolling_restart_nodes_on_either_key_log_citizens_in(
    app: Flask, key_pairs: tuple[KeyPair, KeyPair], phase: Phase
) -> None:
    old, new = key_pairs
    phase(old, next_cert=new.cert_path)
    app.extensions[KNOWN_SP_METADATA] = metadata(app)
    restarted = browser(app)
    not_yet = browser(app)

    # A node not restarted yet starts a login with the old key; a restarted node, with the
    # new key, starts another and receives the answer to the first one (any node may).
    first_url, _ = start_login(not_yet)
    phase(new, next_cert=old.cert_path)
    second_url, _ = start_login(restarted)
    for client, url in ((not_yet, first_url), (restarted, second_url)):
        page = client.get(url.removeprefix("http://localhost"))
        assert page.status_code == 200, page.get_data(as_text=True)


def test_encrypted_assertions_are_refused_whichever_certificate_they_are_encrypted_to(
    app: Flask,
    key_pairs: tuple[KeyPair, KeyPair],
    phase: Phase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # python3-saml decrypts with the one current key: an assertion encrypted to the other
    # certificate of the rollover could not be read. eBox publishes no encryption key and
    # refuses every encrypted assertion, so that no phase of the rollover depends on one.
    old, new = key_pairs
    for current, other in ((old, new), (new, old)):
        phase(current, next_cert=other.cert_path)
        for target in (current, other):
            client = browser(app)
            _, request_id = start_login(client)
            saml_response = encrypted_response(
                app, in_response_to=request_id, cert_pem=target.cert_pem()
            )
            caplog.clear()
            answer = post_to_acs(client, saml_response)
            assert answer.status_code == 403
            assert "encrypted assertion: eBox publishes no encryption key" in caplog.text
