"""Staff members logged in, and applications submitted through the real form."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ebox.accounts.models import Citizen
from ebox.admin.services import add_staff
from ebox.applications.models import SenderApplication
from ebox.audit.services import OPERATOR
from ebox.extensions import db
from tests.applications.application_helpers import submit_confirmed_application
from tests.factories import create_citizen, login
from tests.mail.smtp_server import Received
from tests.profile.forms_helper import csrf_token_from


def log_in_staff(client: FlaskClient, role: str) -> Citizen:
    """A staff member who never went through the citizens' first visit."""
    citizen = create_citizen(activated=False)
    add_staff(raw_number=citizen.national_number, role=role, actor=OPERATOR)
    db.session.commit()
    login(client, citizen)
    return citizen


def submit_application(
    client: FlaskClient, received: Received | None = None, **changes: str
) -> SenderApplication:
    """An application that reached staff: sent, and its e-mail address confirmed."""
    return submit_confirmed_application(client, received, **changes)


def staff_post(
    client: FlaskClient, page: str, action: str, data: dict[str, object] | None = None
) -> TestResponse:
    token = csrf_token_from(client, page)
    return client.post(
        action, data={"csrf_token": token, **(data or {})}, content_type="multipart/form-data"
    )
