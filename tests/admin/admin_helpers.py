"""Staff members logged in, and applications submitted through the real form."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ebox.accounts.models import Citizen
from ebox.admin.services import add_staff
from ebox.applications.models import SenderApplication
from ebox.audit.services import OPERATOR
from ebox.extensions import db
from tests.applications.application_helpers import post_application, valid_form
from tests.factories import create_citizen, login
from tests.profile.forms_helper import csrf_token_from


def log_in_staff(client: FlaskClient, role: str) -> Citizen:
    """A staff member who never went through the citizens' first visit."""
    citizen = create_citizen(activated=False)
    add_staff(raw_number=citizen.national_number, role=role, actor=OPERATOR)
    db.session.commit()
    login(client, citizen)
    return citizen


def submit_application(client: FlaskClient, **changes: str) -> SenderApplication:
    response = post_application(client, valid_form(**changes))
    assert response.status_code == 303, response.get_data(as_text=True)
    reference = uuid.UUID(response.headers["Location"].rsplit("/", 1)[-1])
    db.session.rollback()
    return db.session.scalars(
        select(SenderApplication).where(SenderApplication.reference == reference)
    ).one()


def staff_post(
    client: FlaskClient, page: str, action: str, data: dict[str, object] | None = None
) -> TestResponse:
    token = csrf_token_from(client, page)
    return client.post(
        action, data={"csrf_token": token, **(data or {})}, content_type="multipart/form-data"
    )
