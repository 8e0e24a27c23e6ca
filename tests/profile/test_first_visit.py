"""The first visit: conditions, e-mail address, one-time code, then the inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from ebox.db_types import utcnow
from ebox.extensions import db
from ebox.profile.models import EmailChallenge
from ebox.profile.services import InvalidEmail, normalise_email
from tests.factories import create_citizen, login
from tests.mail.smtp_server import free_port, text_of
from tests.profile.forms_helper import code_from, csrf_token_in, submit

WELCOME = "/profile/welcome"


def challenges_of(citizen):
    query = select(EmailChallenge).where(EmailChallenge.citizen_id == citizen.id)
    return list(db.session.scalars(query.order_by(EmailChallenge.id)))


def start_first_visit(client, **fields):
    citizen = create_citizen(activated=False, **fields)
    login(client, citizen)
    response = submit(client, WELCOME, "/profile/welcome/conditions", {"accept": "y"})
    assert response.status_code == 303
    return citizen


def ask_code(client, address="jan@example.org"):
    return submit(client, WELCOME, "/profile/email", {"email": address})


def enter_code(client, code):
    return submit(client, WELCOME, "/profile/email/confirm", {"code": code})


def test_a_citizen_who_is_not_activated_is_sent_to_the_welcome_page(client):
    login(client, create_citizen(activated=False))
    response = client.get("/profile/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(WELCOME)
    assert "Conditions of use" in client.get(WELCOME).get_data(as_text=True)


def test_the_first_visit_accepts_the_conditions_confirms_the_address_and_opens_the_inbox(
    client, smtp_server
):
    citizen = start_first_visit(client)
    assert citizen.conditions_accepted_at is not None
    assert client.get(WELCOME).get_data(as_text=True).count('name="email"') == 1

    response = ask_code(client, "Jan.Peeters@Example.ORG")
    assert response.status_code == 303
    message = smtp_server.last_to("Jan.Peeters@example.org")
    page = client.get(WELCOME).get_data(as_text=True)
    assert "We sent a 6-digit code to Jan.Peeters@example.org" in page

    response = client.post(
        "/profile/email/confirm",
        data={"csrf_token": csrf_token_in(page), "code": code_from(text_of(message))},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert response.request.path == "/"
    assert citizen.email == "Jan.Peeters@example.org"
    assert citizen.email_confirmed_at is not None
    assert citizen.is_activated


def test_the_conditions_must_be_ticked_to_go_on(client):
    citizen = create_citizen(activated=False)
    login(client, citizen)
    response = submit(client, WELCOME, "/profile/welcome/conditions", {})
    assert response.status_code == 422
    assert "Tick the box to accept the conditions of use." in response.get_data(as_text=True)
    assert citizen.conditions_accepted_at is None


def test_no_code_is_sent_before_the_conditions_are_accepted(client):
    citizen = create_citizen(activated=False)
    login(client, citizen)
    response = ask_code(client)
    assert response.status_code == 303
    assert challenges_of(citizen) == []


def test_an_invalid_address_is_refused_with_a_clear_message(client):
    citizen = start_first_visit(client)
    bad = ["not-an-address", "a@b", "jan@@example.org", "jan@exa mple.org", "jan..x@example.org"]
    for address in bad:
        response = ask_code(client, address)
        assert response.status_code == 422, address
        assert "Enter an e-mail address like name@example.org." in response.get_data(as_text=True)
    response = ask_code(client, "x" * 250 + "@example.org")
    assert response.status_code == 422
    assert "at most 254 characters" in response.get_data(as_text=True)
    assert challenges_of(citizen) == []


def test_the_code_is_stored_only_as_a_keyed_hash(client, smtp_server):
    citizen = start_first_visit(client)
    ask_code(client)
    code = code_from(text_of(smtp_server.last_to("jan@example.org")))
    [challenge] = challenges_of(citizen)
    assert code not in challenge.code_hash
    assert len(challenge.code_hash) == 64
    assert challenge.expires_at - challenge.created_at == timedelta(minutes=15)


def test_a_wrong_code_is_counted_and_the_right_one_still_works(client, smtp_server):
    citizen = start_first_visit(client)
    ask_code(client)
    code = code_from(text_of(smtp_server.last_to("jan@example.org")))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    response = enter_code(client, wrong)
    assert response.status_code == 422
    assert "You can try 4 more times." in response.get_data(as_text=True)
    assert challenges_of(citizen)[0].attempts == 1
    assert citizen.email_confirmed_at is None

    assert enter_code(client, code).status_code == 303
    assert citizen.is_activated


def test_too_many_wrong_codes_burn_the_code_even_for_the_right_one(client, smtp_server):
    citizen = start_first_visit(client)
    ask_code(client)
    code = code_from(text_of(smtp_server.last_to("jan@example.org")))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        response = enter_code(client, wrong)
        assert response.status_code == 422
    assert "this code no longer works" in response.get_data(as_text=True)

    response = enter_code(client, code)
    assert response.status_code == 422
    assert challenges_of(citizen)[0].attempts == 5
    assert citizen.email_confirmed_at is None
    assert 'action="/profile/email"' in client.get(WELCOME).get_data(as_text=True)


def test_an_expired_code_is_refused(client, smtp_server):
    citizen = start_first_visit(client)
    ask_code(client)
    code = code_from(text_of(smtp_server.last_to("jan@example.org")))
    [challenge] = challenges_of(citizen)
    challenge.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    response = enter_code(client, code)
    assert response.status_code == 422
    assert "This code has expired." in response.get_data(as_text=True)
    assert citizen.email_confirmed_at is None


def test_a_new_code_within_a_minute_is_refused(client, smtp_server):
    citizen = start_first_visit(client)
    ask_code(client)
    response = submit(client, WELCOME, "/profile/email/resend")
    assert response.status_code == 429
    assert "Please wait 1 minute" in response.get_data(as_text=True)
    assert len(challenges_of(citizen)) == 1
    assert len(smtp_server.messages) == 1


def test_a_new_code_makes_the_previous_one_useless(client, smtp_server):
    citizen = start_first_visit(client)
    ask_code(client)
    first_code = code_from(text_of(smtp_server.last_to("jan@example.org")))
    first = challenges_of(citizen)[0]
    first.created_at = utcnow() - timedelta(seconds=61)
    db.session.commit()

    assert submit(client, WELCOME, "/profile/email/resend").status_code == 303
    second_code = code_from(text_of(smtp_server.last_to("jan@example.org")))
    assert len(challenges_of(citizen)) == 2
    if first_code != second_code:
        assert enter_code(client, first_code).status_code == 422
    assert enter_code(client, second_code).status_code == 303
    assert citizen.is_activated


def test_no_more_than_five_codes_an_hour(client, smtp_server):
    citizen = start_first_visit(client)
    for _ in range(5):
        assert ask_code(client).status_code == 303
        for challenge in challenges_of(citizen):
            challenge.created_at -= timedelta(seconds=70)
        db.session.commit()
    response = ask_code(client)
    assert response.status_code == 429
    assert "Please wait" in response.get_data(as_text=True)
    assert len(challenges_of(citizen)) == 5
    assert len(smtp_server.messages) == 5


def test_the_code_email_is_written_in_the_citizens_language(client, smtp_server):
    start_first_visit(client, language="fr")
    ask_code(client, "marie@example.org")
    message = smtp_server.last_to("marie@example.org")
    assert message["Content-Language"] == "fr"
    assert message.get_body(preferencelist=("html",)) is not None
    assert 'lang="fr"' in message.get_body(preferencelist=("html",)).get_content()


def test_a_failed_delivery_tells_the_citizen_and_leaves_no_usable_code(client, app):
    citizen = start_first_visit(client)
    settings = app.config["EBOX"]
    settings.smtp_url = f"smtp://127.0.0.1:{free_port()}"
    try:
        response = ask_code(client)
    finally:
        settings.smtp_url = ""
    assert response.status_code == 303
    page = client.get(WELCOME).get_data(as_text=True)
    assert "We could not send the e-mail to jan@example.org" in page
    assert 'value="jan@example.org"' in page
    [challenge] = challenges_of(citizen)
    assert challenge.expires_at <= utcnow()


def test_posts_without_a_csrf_token_are_refused(client):
    citizen = create_citizen(activated=False)
    login(client, citizen)
    assert client.post("/profile/welcome/conditions", data={"accept": "y"}).status_code == 400
    assert client.post("/profile/email", data={"email": "jan@example.org"}).status_code == 400
    assert citizen.conditions_accepted_at is None
    assert challenges_of(citizen) == []


def test_addresses_are_checked_and_their_domain_lowercased():
    assert normalise_email("  Jan.Peeters@Example.ORG ") == "Jan.Peeters@example.org"
    assert normalise_email("anne+ebox@bücher.example") == "anne+ebox@xn--bcher-kva.example"
    for bad in ["", "@example.org", "jan@", "jan@example", "jan@-x.org", "jan@x.123", ".jan@x.org"]:
        with pytest.raises(InvalidEmail):
            normalise_email(bad)
