"""Without JavaScript, in Chromium: every step still works, and a document page fetches nothing
the citizen did not ask for, so that the access history records only what they did."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from ebox.demo.data import DEMO_CITIZENS
from tests.browser.browser_helpers import LiveServer, phone_context

pytestmark = pytest.mark.slow

MARIE = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Marie")
DESKTOP = {"width": 1280, "height": 900}


def _log_in_in_english(page: Page, given_name: str, *, has_script: bool = False) -> None:
    page.goto("/auth/login")
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Log in with eID / itsme / CSAM").click()
    page.get_by_role("button", name=re.compile(rf"^{given_name} ")).click()
    if not has_script:  # the SAML POST binding: without JavaScript the citizen presses Continue
        page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your documents")


def _content_requests(page: Page) -> list[str]:
    fetched: list[str] = []

    def remember(request: Request) -> None:
        if "/content" in request.url:
            fetched.append(request.url)

    page.on("request", remember)
    return fetched


def _history_entries(page: Page) -> list[str]:
    page.goto("/history")
    return [" ".join(text.split()) for text in page.locator(".history__event").all_inner_texts()]


def test_a_document_page_without_javascript_fetches_no_pdf_and_records_only_the_opening(
    no_script_context: BrowserContext,
) -> None:
    page = no_script_context.new_page()
    _log_in_in_english(page, MARIE.given_name)
    fetched = _content_requests(page)

    page.locator("#document-list li.document a").first.click()
    expect(page.get_by_role("link", name="Open the PDF")).to_be_visible()
    page.wait_for_load_state("load")

    assert fetched == []
    entries = _history_entries(page)
    assert len(entries) == 1 and "You opened the document" in entries[0], entries


def test_on_a_wide_screen_the_pdf_is_shown_on_the_page_only_when_asked(
    no_script_context: BrowserContext,
) -> None:
    page = no_script_context.new_page()
    page.set_viewport_size(DESKTOP)
    _log_in_in_english(page, MARIE.given_name)
    fetched = _content_requests(page)
    page.locator("#document-list li.document a").first.click()
    page.wait_for_load_state("load")
    assert fetched == []

    page.get_by_role("link", name="Show the PDF on this page").click()
    expect(page.locator("iframe#pdf")).to_be_visible()
    page.wait_for_load_state("load")

    assert len(fetched) == 1 and "disposition=inline" in fetched[0]
    entries = _history_entries(page)
    assert any("You viewed the PDF in the browser" in entry for entry in entries), entries


def test_a_phone_with_javascript_fetches_no_pdf_either(
    browser: Browser, live_server: LiveServer
) -> None:
    context = phone_context(browser, live_server)
    try:
        page = context.new_page()
        _log_in_in_english(page, MARIE.given_name, has_script=True)
        fetched = _content_requests(page)
        page.locator("#document-list li.document a").first.click()
        page.wait_for_load_state("networkidle")
        assert fetched == []
        expect(page.get_by_role("link", name="Show the PDF on this page")).to_be_hidden()
    finally:
        context.close()
