"""A message with attachments at phone width: Marie sees the decision's two attachments with
their types and sizes, downloads each (the bytes are the ones published), and axe-core finds
nothing serious on the page."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from ebox.demo.data import DEMO_CITIZENS, DEMO_WITH_ATTACHMENTS
from ebox.extensions import db
from ebox.mailbox.models import Document
from tests.browser.browser_helpers import (
    LiveServer,
    assert_fits_phone,
    axe_source,
    axe_violations,
    describe_violations,
)
from tests.browser.test_without_javascript import _log_in_in_english

pytestmark = pytest.mark.slow

MARIE = next(citizen for citizen in DEMO_CITIZENS if citizen.given_name == "Marie")


def test_the_citizen_sees_and_downloads_each_attachment(
    phone: Page, live_server: LiveServer
) -> None:
    document = db.session.scalars(
        select(Document).where(
            Document.recipient_national_number == MARIE.national_number,
            Document.sender_ticket.startswith(DEMO_WITH_ATTACHMENTS),
        )
    ).one()
    _log_in_in_english(phone, MARIE.given_name, has_script=True)
    phone.get_by_role("link", name=document.title, exact=True).click()
    expect(phone.get_by_role("heading", name="Attachments")).to_be_visible()
    items = phone.locator(".attachments__item")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("PDF document")
    expect(items.nth(1)).to_contain_text("CSV table")
    assert_fits_phone(phone)
    if violations := axe_violations(phone, axe_source()):
        pytest.fail(describe_violations("document page with attachments", violations))

    for attachment in document.attachments:
        with phone.expect_download() as started:
            phone.get_by_role("link", name=f"Download {attachment.file_name}").click()
        download = started.value
        assert download.suggested_filename == attachment.file_name
        content = Path(download.path()).read_bytes()
        assert hashlib.sha256(content).hexdigest() == attachment.sha256
