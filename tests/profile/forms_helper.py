"""Submitting forms as a browser does: fetch the page, take its CSRF token, post."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_token_from(client: FlaskClient, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, f"GET {page} answered {response.status_code}"
    return csrf_token_in(response.get_data(as_text=True))


def csrf_token_in(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def submit(
    client: FlaskClient, page: str, action: str, data: dict[str, str] | None = None
) -> TestResponse:
    """POST data to action with the CSRF token shown on page."""
    form = {"csrf_token": csrf_token_from(client, page), **(data or {})}
    return client.post(action, data=form)


def code_from(text: str) -> str:
    """The 6-digit code in an e-mail's text."""
    found = re.search(r"^\s*(\d{6})\s*$", text, re.MULTILINE)
    assert found, "no code in the e-mail"
    return found.group(1)
