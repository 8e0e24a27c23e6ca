"""Web sessions end for good: logout, idle timeout, absolute lifetime, or the citizen ending one
from the profile page. A cookie that holds no session id means a new login, never an error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from ebox.accounts.models import WebSession
from ebox.db_types import utcnow
from ebox.extensions import db
from tests.factories import create_citizen, login

ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)


def _is_sent_to_login(response) -> bool:
    return response.status_code == 302 and "/auth/login" in response.headers["Location"]


def _session_browser(app: Flask, user_agent: str) -> FlaskClient:
    """Another browser of the same test, with its own cookie jar."""
    browser = app.test_client()
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    browser.environ_base["HTTP_USER_AGENT"] = user_agent
    return browser


def _login_as(client: FlaskClient, citizen, user_agent: str | None = None) -> WebSession:
    web_session = login(client, citizen)
    web_session.user_agent = user_agent
    db.session.commit()
    return web_session


def test_a_session_idle_for_too_long_ends_and_asks_for_a_new_login(app, client):
    web_session = login(client, create_citizen())
    web_session.last_seen_at = utcnow() - timedelta(minutes=16)
    db.session.commit()
    assert _is_sent_to_login(client.get("/"))
    db.session.refresh(web_session)
    assert web_session.ended_at is not None


def test_a_session_ends_at_its_absolute_lifetime_however_active_it_was(app, client):
    web_session = login(client, create_citizen())
    web_session.created_at = utcnow() - timedelta(hours=12, minutes=1)
    web_session.last_seen_at = utcnow()
    db.session.commit()
    assert _is_sent_to_login(client.get("/"))
    db.session.refresh(web_session)
    assert web_session.ended_at is not None


def test_a_session_within_its_lifetime_stays_open(app, client):
    web_session = login(client, create_citizen())
    web_session.created_at = utcnow() - timedelta(hours=11, minutes=59)
    db.session.commit()
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("session_id", [12345, ["a", "b"], {"id": "x"}, "not-a-uuid", ""])
def test_a_cookie_whose_session_id_is_not_a_session_id_gets_a_new_login(app, client, session_id):
    with client.session_transaction() as cookie:
        cookie["sid"] = session_id
    assert _is_sent_to_login(client.get("/"))


def test_the_profile_lists_the_open_sessions_with_their_browsers(app):
    citizen = create_citizen()
    phone = _session_browser(app, ANDROID_FIREFOX)
    _login_as(phone, citizen, ANDROID_FIREFOX)
    laptop = _session_browser(app, WINDOWS_EDGE)
    _login_as(laptop, citizen, WINDOWS_EDGE)
    ended = _login_as(_session_browser(app, WINDOWS_EDGE), citizen, WINDOWS_EDGE)
    ended.ended_at = utcnow()
    db.session.commit()

    page = phone.get("/profile/").get_data(as_text=True)

    assert "Firefox on Android" in page and "This browser" in page
    assert "Edge on Windows" in page
    assert page.count("End this session") == 1  # not for this browser, not for the ended one
    assert "End all other sessions" in page


def test_a_citizen_ends_another_session_and_its_cookie_stops_working(app):
    citizen = create_citizen()
    phone = _session_browser(app, ANDROID_FIREFOX)
    _login_as(phone, citizen, ANDROID_FIREFOX)
    laptop = _session_browser(app, WINDOWS_EDGE)
    laptop_session = _login_as(laptop, citizen, WINDOWS_EDGE)
    assert laptop.get("/").status_code == 200

    response = phone.post(
        f"/profile/sessions/{laptop_session.id}/end", data={"csrf_token": _token(phone)}
    )

    assert response.status_code == 303
    assert _is_sent_to_login(laptop.get("/"))
    assert phone.get("/").status_code == 200


def test_ending_all_other_sessions_keeps_only_this_browser(app):
    citizen = create_citizen()
    phone = _session_browser(app, ANDROID_FIREFOX)
    _login_as(phone, citizen, ANDROID_FIREFOX)
    others = [_session_browser(app, WINDOWS_EDGE) for _ in range(2)]
    for other in others:
        _login_as(other, citizen, WINDOWS_EDGE)

    response = phone.post("/profile/sessions/end-others", data={"csrf_token": _token(phone)})

    assert response.status_code == 303
    assert all(_is_sent_to_login(other.get("/")) for other in others)
    assert phone.get("/").status_code == 200


def test_another_citizens_session_cannot_be_ended_and_is_answered_like_a_missing_one(app):
    attacker = _session_browser(app, WINDOWS_EDGE)
    _login_as(attacker, create_citizen())
    victim = _session_browser(app, ANDROID_FIREFOX)
    victim_session = _login_as(victim, create_citizen())

    response = attacker.post(
        f"/profile/sessions/{victim_session.id}/end", data={"csrf_token": _token(attacker)}
    )

    assert response.status_code == 404
    assert victim.get("/").status_code == 200


def test_ending_a_session_needs_the_form_token(app):
    citizen = create_citizen()
    phone = _session_browser(app, ANDROID_FIREFOX)
    _login_as(phone, citizen)
    laptop = _session_browser(app, WINDOWS_EDGE)
    laptop_session = _login_as(laptop, citizen)

    response = phone.post(f"/profile/sessions/{laptop_session.id}/end")

    assert response.status_code == 400
    assert laptop.get("/").status_code == 200


def _token(client: FlaskClient) -> str:
    """The CSRF token the profile page gives this browser."""
    # Requests of the tests share the app fixture's context, where Flask-WTF caches the last
    # token it made: drop it, or this browser's page would carry another browser's token.
    g.pop("csrf_token", None)
    page = client.get("/profile/").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
