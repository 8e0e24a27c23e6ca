"""Many clicks on "Open and confirm receipt" at once: one opening time, one ContentHandover.

The clicks are real HTTP requests to a threaded server, each with its own application context
and database transaction, as in production; the test's own session holds no transaction open
while they run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from ebox import create_app
from ebox.evidence.models import Evidence
from ebox.extensions import db
from ebox.mailbox.models import Document, DocumentAccessEvent
from tests.conftest import make_settings
from tests.factories import create_citizen, create_document, login
from tests.live_server import LiveServer, live_server

CLICKS = 8
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def server(app: Flask, instance_path: Path, database_url: str) -> Iterator[LiveServer]:
    served = create_app(make_settings(instance_path, database_url), TESTING=True)
    with live_server(served) as running:
        yield running
    with served.app_context():
        db.engine.dispose()  # let the `app` fixture empty the tables without waiting


@pytest.mark.postgres_only
def test_concurrent_confirmations_record_one_opening_and_one_handover(
    app: Flask, server: LiveServer
) -> None:
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    browser = server.app.test_client()
    login(browser, citizen)
    cookie = browser.get_cookie("ebox_session")
    assert cookie is not None
    db.session.commit()  # nothing of the test stays open while the clicks run

    web = requests.Session()
    web.trust_env = False
    # The server's own domain: the session it sends back (with the CSRF secret) replaces it.
    web.cookies.set("ebox_session", cookie.value, domain="127.0.0.1", path="/")
    page = web.get(f"{server.url}/documents/{document.id}", timeout=10)
    found = _TOKEN.search(page.text)
    assert page.status_code == 200 and found, page.text[:500]
    token = found.group(1)

    def click() -> int:
        response = web.post(
            f"{server.url}/documents/{document.id}/receipt",
            data={"csrf_token": token},
            allow_redirects=False,
            timeout=30,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        answers = list(pool.map(lambda _: click(), range(CLICKS)))

    assert answers == [303] * CLICKS
    db.session.expire_all()
    handovers = db.session.scalars(
        select(Evidence).where(
            Evidence.document_id == document.id, Evidence.event == "ContentHandover"
        )
    ).all()
    assert len(handovers) == 1
    opened = db.session.get(Document, document.id)
    assert opened is not None and opened.read_at == handovers[0].event_at
    confirmations = db.session.scalars(
        select(DocumentAccessEvent).where(
            DocumentAccessEvent.document_id == document.id,
            DocumentAccessEvent.action == "receipt_confirmed",
        )
    ).all()
    assert len(confirmations) == 1
