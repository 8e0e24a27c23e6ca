"""The demo mail viewer: where a newcomer reads the mail eBox captured on disk."""

from __future__ import annotations

import pytest

from ebox.mail.services import send_email


def test_the_viewer_lists_captured_mail_newest_first_and_shows_one(app, client, unique):
    send_email(to="first@example.org", subject=f"First {unique}", text="one")
    send_email(to="second@example.org", subject=f"Second {unique}", text="Your code:\n\n  123456")
    page = client.get("/demo/mail").get_data(as_text=True)
    assert page.index(f"Second {unique}") < page.index(f"First {unique}")
    assert "second@example.org" in page

    link = page.split(f"Second {unique}")[0].rsplit('href="', 1)[1].split('"')[0]
    assert link.startswith("/demo/mail/")
    shown = client.get(link)
    assert shown.status_code == 200
    assert "123456" in shown.get_data(as_text=True)
    assert "second@example.org" in shown.get_data(as_text=True)


def test_the_viewer_escapes_what_the_mail_contains(app, client, unique):
    send_email(to="x@example.org", subject=f"<b>{unique}</b>", text="<script>alert(1)</script>")
    page = client.get("/demo/mail").get_data(as_text=True)
    assert f"&lt;b&gt;{unique}&lt;/b&gt;" in page
    link = page.split(f"&lt;b&gt;{unique}")[0].rsplit('href="', 1)[1].split('"')[0]
    shown = client.get(link).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in shown
    assert "&lt;script&gt;" in shown


@pytest.mark.parametrize(
    "path",
    [
        "/demo/mail/..%2F..%2Fetc%2Fpasswd",
        "/demo/mail/../ebox.sqlite3",
        "/demo/mail/%2E%2E",
        "/demo/mail/20260101T000000-000000-deadbeef.eml.txt",
        "/demo/mail/20260101T000000-000000-deadbeef.eml",
        "/demo/mail/.20260101T000000-000000-deadbeef.eml.part",
    ],
)
def test_the_viewer_opens_nothing_but_captured_mail(client, path):
    assert client.get(path).status_code == 404
