"""Trusted persons: an owner invites by national number, the holder accepts with the one-time
code and reads within the limits set; every access is in the owner's history with the
holder's name; either side ends it; a holder outside the mandate meets the same 404 as a
stranger."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from werkzeug.test import TestResponse

from ebox.accounts.models import Citizen
from ebox.admin.queries import citizen_overview
from ebox.audit.models import AuditEvent
from ebox.db_types import utcnow
from ebox.evidence.services import chain_of
from ebox.extensions import db
from ebox.mailbox.models import DocumentAccessEvent
from ebox.mandates.models import Mandate
from ebox.senders.models import MessageType
from tests.factories import (
    create_citizen,
    create_document,
    create_message_type,
    create_sender,
    login,
    next_national_number,
)
from tests.profile.forms_helper import csrf_token_in

CODE = re.compile(r"<code>([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})</code>")


@pytest.fixture
def pensions() -> MessageType:
    return create_message_type(create_sender(name="Federal Pension Service"), code="PENSION")


@pytest.fixture
def taxes() -> MessageType:
    return create_message_type(create_sender(name="Federal Tax Service"), code="TAX")


def browser_of(app: Flask, citizen: Citizen) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, citizen)
    return client


def post(client: FlaskClient, page: str, action: str, data: dict[str, str]) -> TestResponse:
    """Post as the browser does, with the token of the page it shows."""
    g.pop("csrf_token", None)  # the tests' shared application context keeps the last one
    token = csrf_token_in(client.get(page).get_data(as_text=True))
    g.pop("csrf_token", None)
    return client.post(action, data={"csrf_token": token, **data})


def invite(owner: FlaskClient, holder: Citizen, **fields: str) -> str:
    """The owner's invitation through the page; returns the code shown."""
    data = {
        "national_number": holder.national_number,
        "scope": "every",
        "ends_on": (date.today() + timedelta(days=90)).isoformat(),
        **fields,
    }
    response = post(owner, "/mandates/", "/mandates/", data)
    assert response.status_code == 200, response.get_data(as_text=True)
    found = CODE.search(response.get_data(as_text=True))
    assert found, "the code is shown once to the owner"
    return found.group(1)


def accept_and_read(holder_client: FlaskClient, code: str) -> Mandate:
    assert post(holder_client, "/mandates/", "/mandates/accept", {"code": code}).status_code == 303
    [mandate] = db.session.scalars(select(Mandate).where(Mandate.accepted_at.is_not(None)))
    response = post(holder_client, "/mandates/", f"/mandates/{mandate.id}/read", {})
    assert response.status_code == 303
    return mandate


@pytest.fixture
def people(app: Flask) -> tuple[Citizen, Citizen, FlaskClient, FlaskClient]:
    owner = create_citizen(given_name="Odette", surname="Owner", email="odette@example.org")
    holder = create_citizen(
        given_name="Hector", surname="Holder", national_number=next_national_number()
    )
    return owner, holder, browser_of(app, owner), browser_of(app, holder)


def test_the_holder_reads_within_the_scope_and_the_owner_sees_it_with_their_name(
    people, pensions: MessageType, taxes: MessageType
) -> None:
    owner, holder, owner_client, holder_client = people
    pension = create_document(owner, message_type=pensions, title="Pension decision")
    tax = create_document(owner, message_type=taxes, title="Tax assessment")
    registered = create_document(
        owner, message_type=pensions, title="Registered pension letter", is_registered=True
    )
    own = create_document(holder, message_type=taxes, title="Hector's own tax letter")
    code = invite(owner_client, holder, scope="chosen", senders=str(pensions.sender_id))
    accept_and_read(holder_client, code)

    inbox = holder_client.get("/").get_data(as_text=True)
    assert "You are reading the eBox of Odette Owner." in inbox
    assert "Pension decision" in inbox
    for hidden in ("Tax assessment", "Registered pension letter", "Hector's own tax letter"):
        assert hidden not in inbox
    assert "Move to the archive" not in inbox  # reading, never arranging

    assert holder_client.get(f"/documents/{pension.id}").status_code == 200
    assert holder_client.get(f"/documents/{pension.id}/content").status_code == 200
    for outside in (tax, registered, own):  # the same 404 as a stranger's document
        assert holder_client.get(f"/documents/{outside.id}").status_code == 404
        assert holder_client.get(f"/documents/{outside.id}/content").status_code == 404
    assert post(holder_client, "/", f"/documents/{pension.id}/hide", {}).status_code == 403

    db.session.refresh(pension)
    assert pension.read_at is not None  # read for the owner
    events = db.session.scalars(
        select(DocumentAccessEvent).where(DocumentAccessEvent.document_id == pension.id)
    ).all()
    assert {e.citizen_id for e in events} == {owner.id}
    assert {e.representative_id for e in events} == {holder.id}
    history = owner_client.get("/history").get_data(as_text=True)
    assert "Hector Holder, your trusted person, opened the document" in history
    # The holder's own history and profile stay theirs: nothing of the owner's.
    assert "Pension decision" not in holder_client.get("/history").get_data(as_text=True)
    assert owner.email not in holder_client.get("/profile/").get_data(as_text=True)


def test_after_the_owner_ends_it_the_holders_next_request_is_refused(
    people, pensions: MessageType
) -> None:
    owner, holder, owner_client, holder_client = people
    document = create_document(owner, message_type=pensions, title="Pension decision")
    mandate = accept_and_read(holder_client, invite(owner_client, holder))
    assert holder_client.get(f"/documents/{document.id}").status_code == 200

    assert post(owner_client, "/mandates/", f"/mandates/{mandate.id}/end", {}).status_code == 303

    assert holder_client.get(f"/documents/{document.id}").status_code == 404
    inbox = holder_client.get("/").get_data(as_text=True)
    assert "You are reading the eBox of" not in inbox
    assert "Pension decision" not in inbox
    assert post(holder_client, "/mandates/", f"/mandates/{mandate.id}/read", {}).status_code == 404
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject_type == "mandate")
    ).all()
    assert actions == ["mandate.granted", "mandate.accepted", "mandate.ended"]


def test_the_holder_may_end_it_too(people, pensions: MessageType) -> None:
    _, holder, owner_client, holder_client = people
    mandate = accept_and_read(holder_client, invite(owner_client, holder))
    assert post(holder_client, "/mandates/", f"/mandates/{mandate.id}/end", {}).status_code == 303
    db.session.refresh(mandate)
    assert mandate.ended_by == "holder"
    assert "ended" in owner_client.get("/mandates/").get_data(as_text=True)


def test_a_mandate_past_its_end_date_reads_nothing(people, pensions: MessageType) -> None:
    owner, holder, owner_client, holder_client = people
    document = create_document(owner, message_type=pensions)
    mandate = accept_and_read(holder_client, invite(owner_client, holder))
    mandate.ends_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert holder_client.get(f"/documents/{document.id}").status_code == 404


def test_a_code_works_once_for_its_holder_only_while_the_invitation_is_open(
    app: Flask, people, pensions: MessageType
) -> None:
    owner, holder, owner_client, holder_client = people
    stranger = create_citizen(national_number=next_national_number())
    stranger_client = browser_of(app, stranger)
    document = create_document(owner, message_type=pensions)
    code = invite(owner_client, holder)
    [pending] = db.session.scalars(select(Mandate)).all()

    # Pending: nothing to read yet.
    assert post(holder_client, "/mandates/", f"/mandates/{pending.id}/read", {}).status_code == 404
    # Someone else's code, a wrong one: refused alike.
    assert (
        post(stranger_client, "/mandates/", "/mandates/accept", {"code": code}).status_code == 422
    )
    wrong = "AAAA-BBBB-CCCC"
    assert post(holder_client, "/mandates/", "/mandates/accept", {"code": wrong}).status_code == 422
    # Typed in lower case with spaces: accepted; then used up.
    typed = code.lower().replace("-", " ")
    assert post(holder_client, "/mandates/", "/mandates/accept", {"code": typed}).status_code == 303
    assert post(holder_client, "/mandates/", "/mandates/accept", {"code": code}).status_code == 422
    assert stranger_client.get(f"/documents/{document.id}").status_code == 404

    expired = invite(owner_client, stranger)
    late = db.session.scalars(select(Mandate).where(Mandate.holder_id.is_(None))).one()
    late.code_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert (
        post(stranger_client, "/mandates/", "/mandates/accept", {"code": expired}).status_code
        == 422
    )


def test_the_owner_cannot_invite_themselves_nor_beyond_three_years(people) -> None:
    owner, holder, owner_client, _ = people
    far = (date.today() + timedelta(days=3 * 365 + 5)).isoformat()
    for data in (
        {"national_number": owner.national_number, "scope": "every", "ends_on": "2027-01-01"},
        {"national_number": holder.national_number, "scope": "every", "ends_on": far},
        {"national_number": "12345678901", "scope": "every", "ends_on": "2027-01-01"},
        {"national_number": holder.national_number, "scope": "chosen", "ends_on": "2027-01-01"},
    ):
        assert post(owner_client, "/mandates/", "/mandates/", data).status_code == 422
    assert db.session.scalars(select(Mandate)).all() == []


def test_without_the_forms_token_nothing_changes(people) -> None:
    _, holder, owner_client, holder_client = people
    mandate = accept_and_read(holder_client, invite(owner_client, holder))
    g.pop("csrf_token", None)
    assert owner_client.post(f"/mandates/{mandate.id}/end").status_code == 400
    assert holder_client.post("/mandates/stop-reading").status_code == 400
    db.session.refresh(mandate)
    assert mandate.ended_at is None


def test_a_holder_cannot_pass_the_mandate_on_nor_end_anothers(
    app: Flask, people, pensions: MessageType
) -> None:
    owner, holder, owner_client, holder_client = people
    third = create_citizen(national_number=next_national_number())
    third_client = browser_of(app, third)
    document = create_document(owner, message_type=pensions)
    mandate = accept_and_read(holder_client, invite(owner_client, holder))
    # Whatever the holder grants while reading for the owner is a mandate on their own eBox.
    code = invite(holder_client, third)
    accept_and_read_as_third = post(third_client, "/mandates/", "/mandates/accept", {"code": code})
    assert accept_and_read_as_third.status_code == 303
    granted = db.session.scalars(select(Mandate).where(Mandate.holder_id == third.id)).one()
    assert granted.owner_id == holder.id
    post(third_client, "/mandates/", f"/mandates/{granted.id}/read", {})
    assert third_client.get(f"/documents/{document.id}").status_code == 404
    # A stranger to a mandate cannot end it.
    assert post(third_client, "/mandates/", f"/mandates/{mandate.id}/end", {}).status_code == 404


def test_staff_see_how_many_mandates_never_whose(people, pensions: MessageType) -> None:
    owner, holder, owner_client, holder_client = people
    accept_and_read(holder_client, invite(owner_client, holder))
    owner_view = citizen_overview(owner.national_number, now=utcnow())
    holder_view = citizen_overview(holder.national_number, now=utcnow())
    assert owner_view.account is not None and holder_view.account is not None
    assert (owner_view.account.mandates_granted, owner_view.account.mandates_held) == (1, 0)
    assert (holder_view.account.mandates_granted, holder_view.account.mandates_held) == (0, 1)


def test_a_holder_allowed_registered_mail_opens_a_letter_and_the_evidence_names_them(
    people, pensions: MessageType
) -> None:
    owner, holder, owner_client, holder_client = people
    registered = create_document(owner, message_type=pensions, is_registered=True)
    mandate = accept_and_read(holder_client, invite(owner_client, holder, may_open_registered="y"))
    page = holder_client.get(f"/documents/{registered.id}")
    assert "Open and confirm receipt" in page.get_data(as_text=True)

    page_url = f"/documents/{registered.id}"
    assert post(holder_client, page_url, f"{page_url}/receipt", {}).status_code == 303

    handover = chain_of(registered.id)[-1]
    assert handover.event == "ContentHandover"
    root = etree.fromstring(handover.xml)
    [person] = root.xpath("//*[local-name()='Representative']")
    texts = " ".join(person.itertext())
    assert holder.national_number in texts
    assert "Hector Holder" in texts
    assert str(mandate.id) in texts
    assert holder_client.get(f"{page_url}/content").status_code == 200
    history = owner_client.get("/history").get_data(as_text=True)
    assert (
        "Hector Holder, your trusted person, opened the registered letter and confirmed receipt"
        in history
    )
