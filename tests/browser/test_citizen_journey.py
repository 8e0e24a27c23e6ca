"""A citizen's journey in a real browser at phone width, and an accessibility check by axe-core.

Chromium runs headless against eBox served over HTTP on loopback: the demo identity provider
logs the citizen in with a signed SAML response, the confirmation code travels through a real
SMTP server, and htmx enhances the inbox as it does for everyone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select

from ebox.demo.data import DEMO_CITIZENS
from ebox.evidence.services import chain_of
from ebox.extensions import db
from ebox.mailbox.models import Document
from tests.browser.browser_helpers import (
    LiveServer,
    assert_fits_phone,
    axe_source,
    axe_violations,
    describe_violations,
    phone_context,
    translated,
    wait_for_code,
)

pytestmark = pytest.mark.slow

EMMA = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Emma")
MARIE = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Marie")

# Emma's demo documents (English), newest first by the dates load_demo_data() gives them.
ALLOWANCE = "Decision on your family allowance"
SCHEDULE = "Payment schedule for next quarter"
REGISTERED = "Registered letter: change of your pension payment"
PENSION = "Your pension statement 2026"
ADDRESS = "Confirmation of your address change"  # the demo data marks this one read
NEWEST_FIRST = [ALLOWANCE, SCHEDULE, REGISTERED, PENSION, ADDRESS]


def rows(page: Page) -> Locator:
    return page.locator("#document-list li.document")


def row(page: Page, title: str) -> Locator:
    return rows(page).filter(has=page.get_by_role("link", name=title, exact=True))


def log_in_at_demo_idp(page: Page, given_name: str) -> None:
    """From the login page, through the demo identity provider, back to eBox."""
    page.get_by_role("link", name="Log in with eID / itsme / CSAM").click()
    expect(page).to_have_url(re.compile(r"/demo/idp/sso\?SAMLRequest="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo login service")
    assert_fits_phone(page)
    page.get_by_role("button", name=re.compile(rf"^{given_name} ")).click()


def test_citizen_journey(phone: Page, live_server: LiveServer) -> None:
    page = phone
    email = "emma.claes@example.org"
    assert not EMMA.activated

    # Not logged in: the inbox sends the visitor to the login page.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to your eBox")
    assert_fits_phone(page)

    # A citizen who has never used eBox: the first visit starts after the login.
    log_in_at_demo_idp(page, EMMA.given_name)
    expect(page).to_have_url(f"{live_server.url}/profile/welcome")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to eBox, Emma")
    expect(page.get_by_text("Step 1 of 3")).to_be_visible()
    assert_fits_phone(page)

    page.get_by_label("I have read the conditions of use and I accept them").check()
    page.get_by_role("button", name="Accept and continue").click()
    expect(page.get_by_text("Step 2 of 3")).to_be_visible()
    assert_fits_phone(page)

    page.get_by_role("textbox", name="E-mail address").fill(email)
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_text("Step 3 of 3")).to_be_visible()
    expect(page.get_by_text(f"We sent a 6-digit code to {email}")).to_be_visible()
    assert_fits_phone(page)

    code = wait_for_code(live_server.mail, email)
    page.get_by_role("textbox", name="Confirmation code").fill(code)
    page.get_by_role("button", name="Confirm").click()

    # The inbox: newest first, the unread ones marked.
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_text(f"Your e-mail address {email} is confirmed.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your documents")
    expect(rows(page).locator(".document__title")).to_have_text(NEWEST_FIRST)
    expect(page.locator(".list-summary")).to_have_text("5 documents, 4 new")
    for title in NEWEST_FIRST:
        badge = row(page, title).locator(".badge--new")
        expect(badge).to_have_count(0 if title == ADDRESS else 1)
        if title != ADDRESS:
            expect(badge).to_have_text("New")
    expect(row(page, REGISTERED).locator(".badge--registered")).to_have_text("Registered mail")
    assert_fits_phone(page)
    screenshot_dir = os.environ.get("EBOX_SCREENSHOT_DIR")
    if screenshot_dir:
        page.goto("/")  # without the confirmation notice
        Path(screenshot_dir).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(screenshot_dir) / "inbox-phone.png"), scale="css")

    # One document: who sent it and how to reach them; opening it marks it read.
    page.get_by_role("link", name=PENSION, exact=True).click()
    expect(page).to_have_url(re.compile(r"/documents/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(PENSION)
    expect(page.locator(".document-page__header .document__sender")).to_have_text(
        "Demo Pension Service"
    )
    contact = page.locator("dl.contact")
    expect(contact.get_by_role("link", name="+32 78 15 17 65")).to_have_attribute(
        "href", "tel:+3278151765"
    )
    expect(contact.get_by_role("link", name="contact@pensions.demo.example")).to_have_attribute(
        "href", "mailto:contact@pensions.demo.example"
    )
    expect(
        contact.get_by_role("link", name="https://pensions.demo.example/contact")
    ).to_be_visible()
    expect(contact.get_by_text("Zuidertoren, 1060 Brussels")).to_be_visible()
    assert_fits_phone(page)

    # The download: the sender's file name, and a PDF.
    expected_name = f"demo-0001-{EMMA.national_number[-5:]}.pdf"
    with page.expect_download() as downloading:
        page.get_by_role("link", name=f"Download {expected_name}").click()
    download = downloading.value
    assert download.suggested_filename == expected_name
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF-"), content[:20]

    page.get_by_role("link", name="Back to your documents").click()
    expect(row(page, PENSION).locator(".badge--new")).to_have_count(0)
    expect(row(page, PENSION)).not_to_have_class(re.compile(r"document--new"))
    expect(page.locator(".list-summary")).to_have_text("5 documents, 3 new")

    # Filters (htmx swaps the list and keeps the address in step): unread only, then a search.
    page.get_by_text("Search and filter").click()
    page.get_by_label("Unread only").check()
    expect(page).to_have_url(re.compile(r"[?&]unread=y"))
    expect(rows(page).locator(".document__title")).to_have_text([ALLOWANCE, SCHEDULE, REGISTERED])
    page.get_by_label("Unread only").uncheck()
    expect(rows(page)).to_have_count(5)
    page.get_by_role("searchbox", name="Search in titles").fill("PENSION")
    expect(page).to_have_url(re.compile(r"[?&]q=PENSION"))
    expect(rows(page).locator(".document__title")).to_have_text([REGISTERED, PENSION])
    expect(page.locator(".list-summary")).to_have_text("2 documents match")
    assert_fits_phone(page)
    page.get_by_role("link", name="Clear the filters").click()
    expect(rows(page)).to_have_count(5)

    # Move a document to the archive, and find it there.
    archive_button = re.compile(rf"^Move to the archive\W+{re.escape(SCHEDULE)}$")
    row(page, SCHEDULE).get_by_role("button", name=archive_button).click()
    expect(page.get_by_text(f"“{SCHEDULE}” is now in the archive.")).to_be_visible()
    page.reload()
    expect(rows(page).locator(".document__title")).to_have_text(
        [ALLOWANCE, REGISTERED, PENSION, ADDRESS]
    )
    page.get_by_role("radio", name="Archive").check()
    expect(page).to_have_url(re.compile(r"[?&]show=archive"))
    expect(page.locator(".list-title")).to_have_text("Archive")
    expect(rows(page).locator(".document__title")).to_have_text([SCHEDULE])
    expect(page.locator(".list-summary")).to_have_text("1 archived document")
    assert_fits_phone(page)

    # The registered letter stays closed until Emma confirms that opening it records a proof of
    # receipt; confirming seals the ContentHandover evidence the sender's proof will show.
    page.get_by_role("radio", name="Inbox").check()
    page.get_by_role("link", name=REGISTERED, exact=True).click()
    expect(page.get_by_role("heading", name="This is a registered letter")).to_be_visible()
    expect(page.get_by_text("eBox records a proof of receipt")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Download "))).to_have_count(0)
    assert_fits_phone(page)
    page.get_by_role("button", name="Open and confirm receipt").click()
    expect(page.get_by_role("link", name=re.compile(r"^Download "))).to_be_visible()
    registered = db.session.scalars(select(Document).where(Document.title == REGISTERED)).one()
    assert [item.event for item in chain_of(registered.id)] == [
        "SubmissionAcceptance",
        "ContentConsignment",
        "ContentHandover",
    ]
    page.get_by_role("link", name="Back to your documents").click()

    # French: the whole interface follows, and the longer words still fit. On a phone the
    # languages are in the folded menu.
    page.locator(".site-menu > summary").click()
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    french_heading = translated("fr", "Your documents")
    assert french_heading != "Your documents", "the French catalog lacks 'Your documents'"
    expect(page.get_by_role("heading", level=1)).to_have_text(french_heading)
    expect(page.locator("form.logout button")).to_have_text(translated("fr", "Log out"))
    assert_fits_phone(page)

    # Logging out ends the session for good: even the old cookie no longer opens the inbox.
    old_cookies = page.context.cookies()
    page.locator(".site-menu > summary").click()
    page.locator("form.logout button").click()
    expect(page).to_have_url(f"{live_server.url}/auth/login")
    expect(page.locator(".notice--success")).to_be_visible()
    assert_fits_phone(page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login\?next="))
    page.context.add_cookies(old_cookies)  # type: ignore[arg-type]  # Cookie fits SetCookieParam
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login\?next="))


def test_pages_have_no_serious_accessibility_violations(
    browser: Browser, live_server: LiveServer
) -> None:
    source = axe_source()
    context = phone_context(browser, live_server)
    page = context.new_page()
    found: list[str] = []

    def check(where: str) -> None:
        violations = axe_violations(page, source)
        if violations:
            found.append(describe_violations(where, violations))

    try:
        page.goto("/auth/login")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        check("login page")

        page.goto("/")
        log_in_at_demo_idp(page, MARIE.given_name)  # already activated: straight to the inbox
        expect(page).to_have_url(f"{live_server.url}/")
        expect(rows(page)).to_have_count(5)
        check("inbox")

        rows(page).first.locator(".document__title a").click()
        expect(page).to_have_url(re.compile(r"/documents/"))
        check("document page")

        page.goto("/profile/")
        expect(page.locator("form[action$='/profile/electronic-only']")).to_be_visible()
        check("profile page")

        page.goto("/history")
        expect(page.locator(".history__event").first).to_be_visible()
        check("access history page")
    finally:
        context.close()
    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)
