"""Reading the mail captured on disk (embedded default), for the demo mail viewer."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import cast

from ebox.config import current_settings
from ebox.mail.services import CAPTURE_FOLDER

# Exactly the names _capture() writes: nothing else (no "..", no slash) can be opened.
CAPTURED_NAME = re.compile(r"\d{8}T\d{6}-\d{6}-[0-9a-f]{8}\.eml")


@dataclass(frozen=True)
class CapturedMail:
    name: str
    to: str
    subject: str
    date: str
    language: str
    text: str


def capture_folder() -> Path:
    return Path(current_settings().instance_path) / CAPTURE_FOLDER


def list_captured(limit: int = 200) -> list[CapturedMail]:
    """Captured messages, newest first (names start with the UTC time)."""
    folder = capture_folder()
    if not folder.is_dir():
        return []
    names = sorted(
        (path.name for path in folder.iterdir() if CAPTURED_NAME.fullmatch(path.name)),
        reverse=True,
    )
    found = (read_captured(name) for name in names[:limit])
    return [mail for mail in found if mail is not None]


def read_captured(name: str) -> CapturedMail | None:
    """One captured message by file name, or None for a name that is not one of ours."""
    if not CAPTURED_NAME.fullmatch(name):
        return None
    path = capture_folder() / name
    if not path.is_file():
        return None
    message = cast(EmailMessage, email.message_from_bytes(path.read_bytes(), policy=default_policy))
    return CapturedMail(
        name=name,
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
        date=str(message["Date"] or ""),
        language=str(message["Content-Language"] or ""),
        text=_text_part(message),
    )


def _text_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""
