"""Helpers for the mailbox tests: posting like a browser, comparing 404 pages, reading the
inbox."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ebox.db_types import utcnow
from ebox.extensions import db
from tests.factories import create_document

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_TOKENS_ANYWHERE = re.compile(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]+"')


def csrf_token(client: FlaskClient, page: str = "/history") -> str:
    response = client.get(page)
    assert response.status_code == 200, f"GET {page} answered {response.status_code}"
    found = _TOKEN.search(response.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def post(
    client: FlaskClient, action: str, data: dict[str, str] | None = None, **kwargs: object
) -> TestResponse:
    """POST with a CSRF token taken from a page, as a browser does."""
    return client.post(action, data={"csrf_token": csrf_token(client), **(data or {})}, **kwargs)


def without_tokens(html: str, *ids: object) -> str:
    """The page with its per-request CSRF tokens and the given ids blanked out."""
    html = _TOKENS_ANYWHERE.sub(r"\1TOKEN", html)
    for value in ids:
        html = html.replace(str(value), "ID")
    return html


HTMX = {"HX-Request": "true"}


def titles_on(html: str) -> list[str]:
    return re.findall(r'class="document__title">\s*<a href="[^"]+">([^<]+)</a>', html)


def inbox(client: FlaskClient, query: str = "", headers: dict[str, str] | None = None) -> str:
    response = client.get(f"/{query}", headers=headers or {})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def publish_in_order(citizen, titles, **fields):
    """Documents published one minute apart, the first title the oldest."""
    documents = [create_document(citizen, title=title, **fields) for title in titles]
    start = utcnow() - timedelta(hours=1)
    for minutes, document in enumerate(documents):
        document.published_at = start + timedelta(minutes=minutes)
    db.session.commit()
    return documents
