"""A trusted person in real browsers at phone width: Marie (with JavaScript) invites Lukas by his
national register number; Lukas (without JavaScript) accepts with the code, reads one of
Marie's documents; Marie sees it in her history with his name and ends the mandate; Lukas's
next request is refused. axe-core finds nothing serious on the new pages."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ebox.demo.data import DEMO_CITIZENS
from tests.browser.browser_helpers import (
    LiveServer,
    assert_fits_phone,
    axe_source,
    axe_violations,
    describe_violations,
    phone_context,
)
from tests.browser.test_without_javascript import _log_in_in_english

pytestmark = pytest.mark.slow

MARIE = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Marie")
LUKAS = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Lukas")


def open_menu_link(page: Page, name: str) -> None:
    page.locator(".site-menu > summary").click()
    page.get_by_role("link", name=name).click()


def invite_lukas(page: Page) -> str:
    open_menu_link(page, "Trusted persons")
    expect(page.get_by_role("heading", level=1)).to_have_text("Trusted persons")
    page.get_by_label("Their national register number").fill(LUKAS.national_number)
    page.get_by_label("Documents of every sender").check()
    page.get_by_label("They may also open registered letters").check()
    page.get_by_label("Until").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Make the code").click()
    expect(page.get_by_role("heading", name="Pass this code on")).to_be_visible()
    code = page.locator(".mandate-code code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    return code


def accept(page: Page, code: str) -> None:
    page.goto("/mandates/")
    page.get_by_label("Code you received").fill(code)
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_text("You may now read the eBox of Marie Dubois.")).to_be_visible()


def test_a_trusted_person_reads_and_the_owner_sees_it_then_ends_it(
    browser: Browser, live_server: LiveServer, no_script_context: BrowserContext
) -> None:
    source = axe_source()
    found: list[str] = []
    owner_context = phone_context(browser, live_server)
    owner = owner_context.new_page()
    holder = no_script_context.new_page()
    try:
        _log_in_in_english(owner, MARIE.given_name, has_script=True)
        first_title = owner.locator("#document-list .document__title a").first.inner_text()
        code = invite_lukas(owner)
        assert_fits_phone(owner)
        if violations := axe_violations(owner, source):
            found.append(describe_violations("trusted persons page", violations))

        _log_in_in_english(holder, LUKAS.given_name)
        accept(holder, code)
        holder.get_by_role("button", name="Read for Marie Dubois").click()
        expect(holder.get_by_text("You are reading the eBox of Marie Dubois.")).to_be_visible()
        expect(holder.get_by_role("heading", level=1)).to_have_text("Documents of Marie Dubois")
        expect(holder.get_by_role("link", name=first_title, exact=True)).to_be_visible()
        expect(holder.get_by_role("button", name=re.compile("^Move to the archive"))).to_have_count(
            0
        )
        assert_fits_phone(holder)
        holder.get_by_role("link", name=first_title, exact=True).click()
        expect(holder.get_by_role("heading", level=1)).to_have_text(first_title)
        expect(holder.get_by_text("You are reading the eBox of Marie Dubois.")).to_be_visible()
        document_url = holder.url

        # The registered letter, allowed by the mandate: opened for Marie, sealed naming Lukas.
        holder.goto("/")
        holder.locator(".document:has(.badge--registered) .document__title a").first.click()
        holder.get_by_role("button", name="Open and confirm receipt").click()
        expect(holder.get_by_role("link", name=re.compile(r"^Download "))).to_be_visible()

        owner.goto("/history")
        events = owner.locator(".history__event")
        for done in ("opened the registered letter", "opened the document"):
            expect(
                events.filter(has_text=f"Lukas Schmitz, your trusted person, {done}")
            ).not_to_have_count(0)
        owner.goto("/mandates/")
        owner.get_by_role("button", name=re.compile("^End this mandate")).click()
        expect(owner.get_by_text("The mandate has ended.")).to_be_visible()

        response = holder.goto(document_url)
        assert response is not None and response.status == 404
        holder.goto("/")
        expect(holder.get_by_text("You are reading the eBox of")).to_have_count(0)
        expect(holder.get_by_role("link", name=first_title, exact=True)).to_have_count(0)

        # Again, and this time the holder ends it, without JavaScript.
        accept(holder, invite_lukas(owner))
        holder.get_by_role("button", name=re.compile("^End this mandate")).click()
        expect(holder.get_by_text("The mandate has ended.")).to_be_visible()
        expect(holder.get_by_role("button", name="Read for Marie Dubois")).to_have_count(0)
    finally:
        owner_context.close()
    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)


def test_the_pages_a_holder_reads_have_no_serious_accessibility_violations(
    browser: Browser, live_server: LiveServer
) -> None:
    """With JavaScript this time: the inbox and a document with the "whose eBox" band."""
    source = axe_source()
    found: list[str] = []
    owner_context = phone_context(browser, live_server)
    holder_context = phone_context(browser, live_server)
    owner, holder = owner_context.new_page(), holder_context.new_page()
    try:
        _log_in_in_english(owner, MARIE.given_name, has_script=True)
        code = invite_lukas(owner)
        _log_in_in_english(holder, LUKAS.given_name, has_script=True)
        accept(holder, code)
        if violations := axe_violations(holder, source):
            found.append(describe_violations("trusted persons, as holder", violations))
        holder.get_by_role("button", name="Read for Marie Dubois").click()
        expect(holder.get_by_text("You are reading the eBox of Marie Dubois.")).to_be_visible()
        if violations := axe_violations(holder, source):
            found.append(describe_violations("inbox read for someone", violations))
        holder.locator("#document-list .document__title a").first.click()
        expect(holder.get_by_text("You are reading the eBox of Marie Dubois.")).to_be_visible()
        if violations := axe_violations(holder, source):
            found.append(describe_violations("document read for someone", violations))
        assert_fits_phone(holder)
    finally:
        owner_context.close()
        holder_context.close()
    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)
