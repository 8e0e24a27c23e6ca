"""The first screen of a 360 x 740 phone, in every language of the portal, and the WCAG 2.2
rules a phone makes pressing: targets of at least 24 x 24 px, a keyboard that reaches every step
of the journey, and focus never hidden.

Marie (a demo citizen, activated) has an unopened registered letter among her documents.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from ebox.demo.data import DEMO_CITIZENS
from tests.browser.browser_helpers import PHONE, LiveServer, phone_context, translated
from tests.browser.test_citizen_journey import log_in_at_demo_idp

pytestmark = pytest.mark.slow

MARIE = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Marie")
LANGUAGES = {"nl": "Nederlands", "fr": "Français", "de": "Deutsch", "en": "English"}
# WCAG 2.2, 2.5.8 Target Size (Minimum).
SMALLEST_TARGET = 24
# One row: the brand and the menu button (44 px high) with the header's padding and border.
ONE_ROW = 64
FIRST_DOCUMENT_ABOVE = 400
SECONDS = re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b")


def registered_letter(page: Page) -> Locator:
    return page.locator(".document:has(.badge--registered) .document__title a").first


def choose_language(page: Page, language: str) -> None:
    page.locator(".site-menu > summary").click()
    page.get_by_role("button", name=LANGUAGES[language]).click()
    expect(page.locator("html")).to_have_attribute("lang", language)


def undersized_targets(page: Page) -> list[str]:
    """Controls smaller than 24 x 24 px on the screen. Links inside a sentence are WCAG's
    inline exception; what is folded away (zero size) is not a target."""
    return list(
        page.evaluate(
            """(least) => [...document.querySelectorAll(
                    'a, button, summary, select, input:not([type=hidden])')]
                .filter((el) => {
                    const box = el.getBoundingClientRect();
                    if (box.width === 0 || box.height === 0) return false;
                    if (el.matches('.skip-link:not(:focus)')) return false;
                    const inline = getComputedStyle(el).display === 'inline';
                    if (el.tagName === 'A' && inline && el.closest('p, dd, li')) return false;
                    return box.width < least || box.height < least;
                })
                .map((el) => {
                    const box = el.getBoundingClientRect();
                    return `${Math.round(box.width)}x${Math.round(box.height)} `
                        + el.outerHTML.slice(0, 100);
                })""",
            SMALLEST_TARGET,
        )
    )


def focus_problem(page: Page) -> str | None:
    """Why the focused element cannot be seen (outside the screen, or under something else),
    or None when it can."""
    problem = page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || el === document.body) return null;
            const box = el.getBoundingClientRect();
            const what = el.outerHTML.slice(0, 100);
            if (box.width === 0 || box.height === 0) return 'focused without a size: ' + what;
            if (box.bottom <= 0 || box.top >= innerHeight || box.right <= 0
                || box.left >= innerWidth) return 'focused off the screen: ' + what;
            const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
            const y = Math.min(Math.max(box.top + box.height / 2, 0), innerHeight - 1);
            const top = document.elementFromPoint(x, y);
            if (top && !el.contains(top) && !top.contains(el)
                && !(el.labels && [...el.labels].some((label) => label.contains(top))))
                return 'focused under ' + top.outerHTML.slice(0, 80) + ': ' + what;
            return null;
        }"""
    )
    return str(problem) if problem else None


def tab_to(page: Page, target: Locator, most: int = 60) -> None:
    """Press Tab until target has the focus, checking at every stop that focus can be seen."""
    for _ in range(most):
        page.keyboard.press("Tab")
        problem = focus_problem(page)
        assert problem is None, problem
        if target.evaluate("(el) => el === document.activeElement"):
            return
    raise AssertionError(f"{target} not reached in {most} presses of Tab")


def test_on_a_phone_the_first_screen_shows_documents_in_every_language(
    browser: Browser, live_server: LiveServer
) -> None:
    context = phone_context(browser, live_server)
    page = context.new_page()
    try:
        page.goto("/")
        log_in_at_demo_idp(page, MARIE.given_name)
        expect(page.locator("#document-list li.document").first).to_be_visible()
        for language in LANGUAGES:
            choose_language(page, language)
            header = page.locator(".site-header").bounding_box()
            assert header is not None and header["height"] <= ONE_ROW, (language, header)
            expect(page.locator(".filters__panel")).not_to_have_attribute("open", "")
            first = page.locator("#document-list li.document").first.bounding_box()
            assert first is not None and first["y"] < FIRST_DOCUMENT_ABOVE, (language, first)
            assert undersized_targets(page) == [], language

            registered_letter(page).click()
            confirm = page.get_by_role(
                "button", name=translated(language, "Open and confirm receipt")
            )
            box = confirm.bounding_box()
            assert box is not None and box["y"] + box["height"] <= PHONE["height"], (language, box)
            main_text = page.locator("main").inner_text()
            assert translated(language, "Received") in main_text
            assert not SECONDS.search(main_text), (language, SECONDS.search(main_text))
            assert undersized_targets(page) == [], language
            page.go_back()
    finally:
        context.close()


def test_a_keyboard_alone_logs_in_reads_and_opens_a_registered_letter(
    browser: Browser, live_server: LiveServer
) -> None:
    """Tab, Enter and Space only, at phone width: the focused control is always on the screen
    and never under another element (WCAG 2.2, 2.4.11)."""
    context = phone_context(browser, live_server)
    page = context.new_page()
    try:
        page.goto("/auth/login")
        tab_to(page, page.get_by_role("link", name="Log in with eID / itsme / CSAM"))
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Demo login service")
        tab_to(page, page.get_by_role("button", name=re.compile(rf"^{MARIE.given_name} ")))
        page.keyboard.press("Enter")
        expect(page.locator("#document-list li.document").first).to_be_visible()

        # The folded menu opens with Enter: to the access history and back to the inbox.
        menu = page.locator(".site-menu > summary")
        tab_to(page, menu)
        page.keyboard.press("Enter")
        tab_to(page, page.locator(".site-nav a").nth(1))
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/history$"))
        tab_to(page, menu)
        page.keyboard.press("Enter")
        tab_to(page, page.locator(".site-nav a").first)
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{live_server.url}/")

        # The folded filters open with Space.
        tab_to(page, page.locator(".filters__panel > summary"))
        page.keyboard.press("Space")
        expect(page.locator(".filters__panel")).to_have_attribute("open", "")
        assert undersized_targets(page) == []

        letter = registered_letter(page)
        tab_to(page, letter)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/documents/"))
        confirm = page.locator("main form button[type=submit]").first
        tab_to(page, confirm)
        page.keyboard.press("Space")
        download = page.locator("main a.button--primary").first
        expect(download).to_be_visible()
        tab_to(page, download)

        # The trusted-person page, through the menu, to the invitation's last button.
        tab_to(page, menu)
        page.keyboard.press("Enter")
        tab_to(page, page.locator(".site-nav a[href='/mandates/']"))
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/mandates/$"))
        tab_to(page, page.locator("#code"))
        tab_to(page, page.locator("#may_open_registered"))
        page.keyboard.press("Space")
        expect(page.locator("#may_open_registered")).to_be_checked()
        tab_to(page, page.locator("form[action='/mandates/'] button[type=submit]"))
        assert undersized_targets(page) == []
    finally:
        context.close()
