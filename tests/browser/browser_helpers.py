"""What the browser tests share: the live server, the phone viewport, axe-core and the catalogs."""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from babel.support import Translations
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select

from ebox.db_types import utcnow
from ebox.demo.data import create_demo_data
from ebox.extensions import db
from ebox.mailbox.models import Document
from tests.mail.smtp_server import Received, text_of

HERE = Path(__file__).resolve().parent
AXE_SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
TRANSLATIONS = HERE.parent.parent / "ebox" / "translations"

CHROMIUM = os.environ.get("EBOX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

PHONE: ViewportSize = {"width": 360, "height": 740}
BLOCKING_IMPACTS = ("serious", "critical")

# How many days ago each demo document arrived: not the order in which they are created, so
# that the inbox can only be newest first by sorting on the date.
DAYS_AGO = {"DEMO-0002": 1, "DEMO-0004": 3, "DEMO-0003": 6, "DEMO-0001": 10, "DEMO-0005": 20}


@dataclass
class LiveServer:
    """eBox served over real HTTP on loopback, with the SMTP server its mail goes to."""

    url: str
    app: Flask
    mail: Received


def load_demo_data() -> None:
    """The demo senders, citizens and documents, each document received on a day of its own."""
    create_demo_data()
    now = utcnow()
    for document in db.session.scalars(select(Document)):
        document.published_at = now - timedelta(days=DAYS_AGO[document.sender_ticket[:9]])
    db.session.commit()


def phone_context(browser: Browser, server: LiveServer) -> BrowserContext:
    context = browser.new_context(
        base_url=server.url,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    return context


def assert_fits_phone(page: Page) -> None:
    """Nothing on the page is wider than the phone: no sideways scrolling at 360 px.

    Layout may still be settling just after a navigation on a loaded machine: the page gets two
    seconds to fit before it counts as too wide."""
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(
            "(limit) => document.documentElement.scrollWidth <= limit",
            arg=PHONE["width"],
            timeout=2000,
        )
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        culprits = page.evaluate(
            """(limit) => [...document.querySelectorAll('body *')]
                .filter((el) => el.getBoundingClientRect().right > limit)
                .slice(-5)
                .map((el) => el.outerHTML.slice(0, 120))""",
            PHONE["width"],
        )
        raise AssertionError(
            f"{page.url} is {width}px wide at a {PHONE['width']}px viewport; too wide: {culprits}"
        )


def wait_for_code(mail: Received, address: str, timeout: float = 5.0) -> str:
    """The 6-digit code of the last confirmation e-mail the SMTP server received for address."""
    deadline = time.monotonic() + timeout
    while True:
        with mail.lock:
            arrived = any(message["To"] == address for message in mail.messages)
        if arrived or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    message = mail.last_to(address)
    assert message["Subject"] == "Your eBox confirmation code"
    found = re.findall(r"^\s*(\d{6})\s*$", text_of(message), flags=re.MULTILINE)
    assert len(found) == 1, text_of(message)
    return found[0]


def translated(language: str, message: str) -> str:
    """message in language, from the compiled catalog eBox itself uses."""
    return str(Translations.load(str(TRANSLATIONS), [language]).gettext(message))


# --- accessibility ----------------------------------------------------------------------


def axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        raise AssertionError(f"{AXE_SCRIPT} is missing: run scripts/setup --dev (npm ci)")
    return AXE_SCRIPT.read_text(encoding="utf-8")


def axe_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    The script is evaluated through the DevTools protocol: the CSP forbids a <script> tag.
    Frames are left out: the only one eBox has shows a PDF, which axe cannot read.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(source)
    results = page.evaluate(
        "() => axe.run(document, {iframes: false, resultTypes: ['violations']})"
    )
    return [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def describe_violations(where: str, violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"{where}: [{violation['impact']}] {violation['id']}: {violation['help']}"
            f" ({violation['helpUrl']})"
        )
        for node in violation["nodes"][:5]:
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {', '.join(map(str, node['target']))}: {summary}")
            lines.append(f"      {node.get('html', '')[:200]}")
    return "\n".join(lines)
