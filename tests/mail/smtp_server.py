"""Real SMTP servers on loopback (aiosmtpd) that keep what they receive, and their fixtures."""

from __future__ import annotations

import asyncio
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


@dataclass
class PickyServer(Received):
    """A mail server that offers PIPELINING (unless told not to) and misbehaves on request:
    refuses some recipients or some messages, drops the connection right after a message's
    content arrived (before answering), or closes each connection after a few messages."""

    pipelining: bool = True
    refused_recipients: set[str] = field(default_factory=set)  # 550 to RCPT TO
    refused_messages: set[str] = field(default_factory=set)  # 554 after the content
    dropped_after: set[str] = field(default_factory=set)  # kept, but the connection drops
    messages_per_connection: int = 0  # then 421 to the next MAIL FROM (0: no limit)
    connections: int = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        extension = ["250-PIPELINING"] if self.pipelining else []
        return [*responses[:-1], *extension, responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        taken = getattr(session, "taken", 0)
        if self.messages_per_connection and taken >= self.messages_per_connection:
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 Too many messages on this connection, closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refused_recipients:
            return "550 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        [address] = envelope.rcpt_tos
        if address in self.refused_messages:
            return "554 Message refused"
        session.taken = getattr(session, "taken", 0) + 1
        reply = await super().handle_DATA(server, session, envelope)
        if address in self.dropped_after:
            server.transport.close()
        return reply

    def arrived(self) -> list[str]:
        with self.lock:
            return [address for addresses in self.recipients for address in addresses]


@pytest.fixture
def picky_server(app: Flask) -> Iterator[PickyServer]:
    """A PickyServer on loopback, with the application's EBOX_SMTP_URL pointing at it."""
    received = PickyServer()
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
