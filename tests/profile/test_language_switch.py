"""The language switcher of every page, for visitors and citizens."""

from __future__ import annotations

import pytest

from tests.factories import create_citizen, login
from tests.profile.forms_helper import submit


def switch(client, language, next_page="/profile/", page="/auth/login"):
    return submit(client, page, "/profile/language", {"language": language, "next": next_page})


def test_an_anonymous_visitor_can_switch_language(client):
    response = switch(client, "fr", next_page="/auth/login?next=%2F")
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/login?next=%2F"
    with client.session_transaction() as session:
        assert session["language"] == "fr"
    assert '<html lang="fr">' in client.get("/auth/login").get_data(as_text=True)


def test_a_logged_in_citizen_keeps_the_chosen_language(client):
    citizen = create_citizen(language="en")
    login(client, citizen)
    response = switch(client, "de", page="/profile/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/profile/"
    assert citizen.language == "de"
    assert '<html lang="de">' in client.get("/profile/").get_data(as_text=True)


def test_an_unknown_language_is_refused(client):
    citizen = create_citizen(language="en")
    login(client, citizen)
    assert switch(client, "xx", page="/profile/").status_code == 400
    assert citizen.language == "en"


@pytest.mark.parametrize(
    "next_page",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", ""],
)
def test_the_switcher_never_redirects_to_another_site(client, next_page):
    response = switch(client, "nl", next_page=next_page)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_the_switcher_needs_a_csrf_token(client):
    response = client.post("/profile/language", data={"language": "fr", "next": "/"})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "language" not in session
