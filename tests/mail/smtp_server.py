"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and its fixture."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from flask import Flask


@dataclass
class Received:
    """Messages accepted by the server, with the envelope recipients and login used."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append(cast(EmailMessage, message))
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def last_to(self, address: str) -> EmailMessage:
        with self.lock:
            found = [m for m in self.messages if m["To"] == address]
        assert found, f"no message to {address}; got {[m['To'] for m in self.messages]}"
        return found[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server(app: Flask) -> Iterator[Received]:
    """Point the application's EBOX_SMTP_URL at a live loopback server for one test."""
    received = Received()
    port = free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    settings = app.config["EBOX"]
    previous = settings.smtp_url
    settings.smtp_url = f"smtp://127.0.0.1:{port}"
    try:
        yield received
    finally:
        settings.smtp_url = previous
        controller.stop()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())
