"""The installable portal in a real browser: the manifest is linked and served, the service
worker registers for the whole portal and keeps nothing (no cache after browsing the inbox and
a document), and the profile's notifications section is there and accessible.

Headless Chromium cannot reach a real push service, so the button's POST is made as the button
makes it, with a subscription generated like a browser's (tests/push/ checks the rest).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from ebox.extensions import db
from ebox.push.models import PushSubscription
from tests.browser.browser_helpers import (
    LiveServer,
    axe_source,
    axe_violations,
    describe_violations,
    phone_context,
    translated,
)
from tests.browser.test_citizen_journey import MARIE, log_in_at_demo_idp, rows
from tests.push.test_subscriptions import subscription

pytestmark = pytest.mark.slow

POST_AS_THE_BUTTON_DOES = """async (subscription) => {
  const headers = JSON.parse(document.body.getAttribute("hx-headers"));
  const response = await fetch("/profile/push/subscriptions", {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": headers["X-CSRFToken"]},
    body: JSON.stringify(subscription),
  });
  return response.status;
}"""


def test_the_portal_installs_and_its_service_worker_keeps_nothing(
    browser: Browser, live_server: LiveServer
) -> None:
    context = phone_context(browser, live_server)
    page: Page = context.new_page()
    try:
        page.goto("/auth/login")
        manifest_link = page.locator("link[rel=manifest]")
        expect(manifest_link).to_have_attribute("href", "/manifest.webmanifest")
        manifest = page.request.get("/manifest.webmanifest")
        assert manifest.ok and manifest.json()["display"] == "standalone"

        log_in_at_demo_idp(page, MARIE.given_name)
        expect(rows(page)).to_have_count(5)
        registration = page.evaluate(
            """async () => {
              const registration = await navigator.serviceWorker.ready;
              return {scope: registration.scope, script: registration.active.scriptURL};
            }"""
        )
        assert registration == {
            "scope": f"{live_server.url}/",
            "script": f"{live_server.url}/sw.js",
        }
        rows(page).first.locator(".document__title a").click()
        expect(page).to_have_url(re.compile(r"/documents/"))
        page.goto("/")
        expect(rows(page)).to_have_count(5)
        assert page.evaluate("async () => await caches.keys()") == []

        # The profile (Marie reads it in French): the button shows where the browser can receive
        # pushes; axe finds nothing.
        page.goto("/profile/")
        section = page.locator("section[aria-labelledby=push-title]")
        expect(section.get_by_role("heading", level=2)).to_have_text(
            translated("fr", "Notifications on this device")
        )
        expect(section.get_by_role("button")).to_have_text(
            translated("fr", "Turn on notifications on this device")
        )
        expect(section.locator("[data-push-unsupported]")).to_be_hidden()
        assert page.evaluate(POST_AS_THE_BUTTON_DOES, subscription()) == 201
        page.reload()
        expect(section.locator(".session__device")).to_contain_text("Chrome")
        violations = axe_violations(page, axe_source())
        assert not violations, describe_violations("profile page", violations)
        db.session.expire_all()
        assert len(db.session.scalars(select(PushSubscription)).all()) == 1

        stop = translated("fr", "Stop notifications on this device")
        section.get_by_role("button", name=stop).click()
        expect(page.locator(".notice--success")).to_be_visible()
        assert page.evaluate("async () => await caches.keys()") == []
    finally:
        context.close()
