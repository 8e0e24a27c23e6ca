"""The profile page: identity, e-mail address (changed with a new code), electronic only."""

from __future__ import annotations

from tests.factories import create_citizen, login
from tests.mail.smtp_server import text_of
from tests.profile.forms_helper import code_from, submit

CHANGE = "/profile/email"


def test_the_profile_shows_name_formatted_national_number_address_and_language(client):
    citizen = create_citizen(national_number="85073003328", given_name="Marie", surname="Dubois")
    login(client, citizen)
    page = client.get("/profile/").get_data(as_text=True)
    assert "Marie Dubois" in page
    assert "85.07.30-033.28" in page
    assert "jan.peeters@example.org" in page
    assert "(confirmed)" in page
    assert 'value="en" checked' in page


def test_the_profile_is_only_for_logged_in_citizens(client):
    response = client.get("/profile/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_a_new_address_is_confirmed_again_and_the_old_one_kept_until_then(client, smtp_server):
    citizen = create_citizen(email="old@example.org")
    login(client, citizen)
    response = submit(client, CHANGE, CHANGE, {"email": "new@example.org"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(CHANGE)
    assert citizen.email == "old@example.org"
    page = client.get("/profile/").get_data(as_text=True)
    assert "Waiting for confirmation: new@example.org" in page

    code = code_from(text_of(smtp_server.last_to("new@example.org")))
    response = submit(client, CHANGE, "/profile/email/confirm", {"code": code})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/profile/")
    assert citizen.email == "new@example.org"
    notice = smtp_server.last_to("old@example.org")
    assert "no longer write to this address" in text_of(notice)
    assert "new@example.org" not in text_of(notice)


def test_a_wrong_code_for_a_new_address_leaves_the_old_one_in_place(client, smtp_server):
    citizen = create_citizen(email="old@example.org")
    login(client, citizen)
    submit(client, CHANGE, CHANGE, {"email": "new@example.org"})
    code = code_from(text_of(smtp_server.last_to("new@example.org")))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = submit(client, CHANGE, "/profile/email/confirm", {"code": wrong})
    assert response.status_code == 422
    assert citizen.email == "old@example.org"
    assert citizen.is_activated
    assert [m["To"] for m in smtp_server.messages] == ["new@example.org"]


def test_the_electronic_only_choice_is_saved_and_can_be_undone(client):
    citizen = create_citizen()
    login(client, citizen)
    page = client.get("/profile/").get_data(as_text=True)
    assert "only electronically" in page
    response = submit(client, "/profile/", "/profile/electronic-only", {"is_electronic_only": "y"})
    assert response.status_code == 303
    assert citizen.is_electronic_only is True
    submit(client, "/profile/", "/profile/electronic-only", {})
    assert citizen.is_electronic_only is False


def test_the_electronic_only_choice_needs_a_csrf_token(client):
    citizen = create_citizen()
    login(client, citizen)
    response = client.post("/profile/electronic-only", data={"is_electronic_only": "y"})
    assert response.status_code == 400
    assert citizen.is_electronic_only is False


def test_reminders_are_on_by_default_and_the_citizen_can_turn_them_off_and_on(client):
    citizen = create_citizen()
    login(client, citizen)
    page = client.get("/profile/").get_data(as_text=True)
    assert "Remind me of documents I have not opened" in page
    assert "15 days after it arrived" in page
    assert citizen.wants_reminders is True
    response = submit(client, "/profile/", "/profile/reminders", {})  # the box unticked
    assert response.status_code == 303
    assert citizen.wants_reminders is False
    submit(client, "/profile/", "/profile/reminders", {"wants_reminders": "y"})
    assert citizen.wants_reminders is True
    # Without the form's token nothing changes.
    assert client.post("/profile/reminders", data={}).status_code == 400
    assert citizen.wants_reminders is True
