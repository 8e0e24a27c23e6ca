"""Browser fixtures: Chromium driven by Playwright against eBox served over real HTTP.

The live server is a second application on the test database (the `app` fixture empties the
tables afterwards), with its public URL on a free loopback port and its mail going to a real
SMTP server on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from werkzeug.serving import make_server

from ebox import create_app
from ebox.extensions import db
from tests.browser.browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    LiveServer,
    load_demo_data,
    phone_context,
)
from tests.conftest import make_settings
from tests.mail.smtp_server import Received, free_port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: while Playwright's sync API runs, its event loop counts as
    # running in this thread, and code that calls asyncio.run() (pyHanko signing proofs) would
    # fail in any later test of the same process.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(app: Flask, instance_path: Path, database_url: str) -> Iterator[LiveServer]:
    """eBox on http://127.0.0.1:<free port>, with the demo data, for one test."""
    received = Received()
    smtp = Controller(received, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = make_settings(instance_path, database_url, smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    served = create_app(settings)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    # The port is known once the socket is bound; nothing has used these settings yet.
    settings.public_url = f"http://127.0.0.1:{server.server_port}"
    settings.saml_sp_entity_id = f"{settings.public_url}/auth/saml/metadata"
    load_demo_data()  # through the `app` fixture's context: the same database
    db.session.remove()
    thread = threading.Thread(target=server.serve_forever, name="ebox-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=settings.public_url, app=served, mail=received)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        smtp.stop()
        with served.app_context():
            db.engine.dispose()  # let the `app` fixture empty the tables without waiting


@pytest.fixture
def phone(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A new page in a fresh browser context (no cookies) at a 360 x 740 phone viewport."""
    context = phone_context(browser, live_server)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def no_script_context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh browser context at a phone's width with JavaScript turned off."""
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, java_script_enabled=False, locale="en-GB"
    )
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()
