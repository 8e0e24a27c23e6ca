"""Many messages at once (the daily alert's way): several connections, PIPELINING when the
server offers it, and each message's fate told apart when the server refuses or a connection
breaks. A real SMTP server on loopback that misbehaves on request."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask

from ebox.mail.services import Mailer
from ebox.mail.smtp import MailResult, OutgoingMail
from tests.mail.smtp_server import PickyServer, text_of

ADDRESSES = [f"citizen{n}@example.org" for n in range(1, 31)]


def mails(mailer: Mailer, addresses: list[str]) -> list[OutgoingMail]:
    return [
        mailer.compose(
            key=number,
            to=address,
            subject="Vous avez de nouveaux documents dans votre eBox",
            text=f"Bonjour {address},\n.a line that starts with a dot\nService fédéral : 1",
            html=f"<p>Bonjour {address}</p>",
            language="fr",
        )
        for number, address in enumerate(addresses)
    ]


def outcomes(results: list[MailResult]) -> dict[str, list[int]]:
    """Keys of the accepted, refused and in-doubt messages."""
    found: dict[str, list[int]] = {"accepted": [], "refused": [], "in doubt": []}
    for result in results:
        if result.error is None:
            found["accepted"].append(result.key)
        elif result.error.may_have_been_delivered:
            found["in doubt"].append(result.key)
        else:
            found["refused"].append(result.key)
    return {state: sorted(keys) for state, keys in found.items()}


@pytest.mark.parametrize("pipelining", [True, False])
def test_many_messages_go_out_over_several_connections_each_once_and_intact(
    app: Flask, picky_server: PickyServer, pipelining: bool
) -> None:
    picky_server.pipelining = pipelining
    with Mailer(app.config["EBOX"], connections=3) as mailer:
        results = mailer.send_all(iter(mails(mailer, ADDRESSES)))

    assert outcomes(results)["accepted"] == list(range(len(ADDRESSES)))
    assert sorted(picky_server.arrived()) == sorted(ADDRESSES)
    assert picky_server.connections == 3
    message = picky_server.last_to("citizen7@example.org")
    assert message["Subject"] == "Vous avez de nouveaux documents dans votre eBox"
    assert message["Content-Language"] == "fr"
    text = text_of(message).replace("\r\n", "\n")  # as it came over SMTP
    assert "\n.a line that starts with a dot\n" in text  # dot-stuffed, and unstuffed again
    assert "Service fédéral : 1" in text
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "<p>Bonjour citizen7@example.org</p>" in html.get_content()


def test_refused_recipients_and_messages_are_told_apart_and_the_others_still_go(
    app: Flask, picky_server: PickyServer
) -> None:
    picky_server.refused_recipients = {ADDRESSES[3], ADDRESSES[4]}
    picky_server.refused_messages = {ADDRESSES[10]}
    with Mailer(app.config["EBOX"], connections=2) as mailer:
        results = mailer.send_all(iter(mails(mailer, ADDRESSES)))

    found = outcomes(results)
    assert found["refused"] == [3, 4, 10]
    assert found["in doubt"] == []
    assert sorted(picky_server.arrived()) == sorted(
        set(ADDRESSES) - {ADDRESSES[k] for k in (3, 4, 10)}
    )


def test_a_connection_lost_after_a_message_left_leaves_only_that_message_in_doubt(
    app: Flask, picky_server: PickyServer
) -> None:
    picky_server.dropped_after = {ADDRESSES[5]}
    with Mailer(app.config["EBOX"], connections=2) as mailer:
        results = mailer.send_all(iter(mails(mailer, ADDRESSES)))

    found = outcomes(results)
    assert found["in doubt"] == [5]
    assert found["refused"] == []
    # It did arrive; and whatever waited on that connection went out on another, once.
    assert Counter(picky_server.arrived()) == {address: 1 for address in ADDRESSES}
    assert picky_server.connections == 3


def test_a_server_that_takes_few_messages_per_connection_gets_them_all_over_new_ones(
    app: Flask, picky_server: PickyServer
) -> None:
    picky_server.messages_per_connection = 4
    with Mailer(app.config["EBOX"], connections=2) as mailer:
        results = mailer.send_all(iter(mails(mailer, ADDRESSES)))

    assert outcomes(results)["accepted"] == list(range(len(ADDRESSES)))
    assert Counter(picky_server.arrived()) == {address: 1 for address in ADDRESSES}
