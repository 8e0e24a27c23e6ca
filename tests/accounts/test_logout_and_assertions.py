"""Logout ends the server-side session; used assertion ids are kept just long enough."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from ebox.accounts.models import SeenAssertion, WebSession
from ebox.accounts.services import (
    AssertionReplayed,
    forget_expired_assertions,
    remember_assertion,
)
from ebox.db_types import utcnow
from ebox.extensions import db
from tests.accounts.saml_helpers import csrf_token, log_in_through_idp, visit_protected_page


def test_logging_out_ends_the_session_and_the_old_cookie_no_longer_works(app, client):
    log_in_through_idp(client)
    old_cookie = client.get_cookie("ebox_session").value
    token = csrf_token(client)

    answer = client.post("/auth/logout", data={"csrf_token": token}, follow_redirects=True)

    assert answer.request.path == "/auth/login"
    assert "You are logged out." in answer.get_data(as_text=True)
    assert db.session.scalars(select(WebSession)).one().ended_at is not None
    client.set_cookie("ebox_session", old_cookie)
    protected = visit_protected_page(app, client)
    assert protected.status_code == 302
    assert protected.headers["Location"].startswith("/auth/login")


def test_logout_without_csrf_token_is_refused_and_the_session_goes_on(app, client):
    log_in_through_idp(client)

    answer = client.post("/auth/logout")

    assert answer.status_code == 400
    assert db.session.scalars(select(WebSession)).one().ended_at is None
    assert visit_protected_page(app, client).status_code == 302  # onboarding, still logged in
    assert visit_protected_page(app, client).headers["Location"] == "/profile/welcome"


def test_the_login_page_sends_a_logged_in_citizen_on(client):
    log_in_through_idp(client)

    answer = client.get("/auth/login?next=/profile/")

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/profile/"


def test_an_assertion_id_can_be_remembered_only_once(app):
    expires_at = utcnow() + timedelta(minutes=5)
    remember_assertion(assertion_id="id-1", expires_at=expires_at)

    with pytest.raises(AssertionReplayed):
        remember_assertion(assertion_id="id-1", expires_at=expires_at)

    db.session.commit()  # the refused second insert did not spoil the transaction
    assert db.session.scalars(select(SeenAssertion.assertion_id)).all() == ["id-1"]


def test_expired_assertion_ids_are_forgotten_and_live_ones_kept(app):
    now = utcnow()
    remember_assertion(assertion_id="old", expires_at=now - timedelta(seconds=1))
    remember_assertion(assertion_id="live", expires_at=now + timedelta(minutes=5))

    assert forget_expired_assertions(now) == 1

    assert db.session.scalars(select(SeenAssertion.assertion_id)).all() == ["live"]


@pytest.mark.postgres_only
def test_two_concurrent_uses_of_one_assertion_cannot_both_pass(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no concurrent inserts to race")
    expires_at = utcnow() + timedelta(minutes=5)
    outcome: dict[str, str] = {}

    def second_request() -> None:
        with app.app_context():
            try:
                remember_assertion(assertion_id="id-race", expires_at=expires_at)
                db.session.commit()
                outcome["second"] = "accepted"
            except AssertionReplayed:
                db.session.rollback()
                outcome["second"] = "replayed"
            finally:
                db.session.remove()

    remember_assertion(assertion_id="id-race", expires_at=expires_at)
    racer = threading.Thread(target=second_request)
    racer.start()
    racer.join(timeout=0.5)
    assert racer.is_alive(), "the second insert should wait for the first transaction"
    db.session.commit()
    racer.join(timeout=10)

    assert outcome == {"second": "replayed"}
