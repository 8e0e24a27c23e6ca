"""Limits of the public form: per client address and per e-mail address, answered with 429 and
Retry-After, shared through Redis; no limit that a stranger can spend for someone else."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select

from ebox.applications.models import SenderApplication, UnconfirmedApplication
from ebox.applications.queries import same_enterprise_number
from ebox.applications.rate_limits import KEY_PREFIX, client_network
from ebox.extensions import db
from tests.applications.application_helpers import (
    confirm,
    confirmation_path,
    forget_application_limits,
    post_application,
    valid_form,
)
from tests.mail.smtp_server import Received, free_port
from tests.soap.wss_helpers import REDIS_URL
from tests.storage.helpers import changed_settings


def from_client(client: FlaskClient, address: str) -> FlaskClient:
    client.environ_base["REMOTE_ADDR"] = address
    return client


def waiting_forms() -> int:
    db.session.rollback()
    return int(db.session.scalar(select(func.count(UnconfirmedApplication.id))) or 0)


def test_one_client_address_gets_429_with_retry_after_while_another_gets_through(
    app: Flask, client: FlaskClient, smtp_server: Received
) -> None:
    with changed_settings(app, applications_per_client_hour=2):
        from_client(client, "192.0.2.10")
        for number in range(2):
            data = valid_form(business_contact_email=f"contact{number}@pensions.example")
            assert post_application(client, data).status_code == 303

        refused = post_application(client, valid_form(business_contact_email="new@example.org"))
        assert refused.status_code == 429
        assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
        page = refused.get_data(as_text=True)
        assert "Several applications were sent from your network recently." in page
        assert "Please try again in 60 minutes." in page
        assert 'value="Federal Pension Service"' in page  # nothing typed is lost
        assert waiting_forms() == 2
        assert len(smtp_server.messages) == 2

        from_client(client, "198.51.100.20")
        data = valid_form(business_contact_email="new@example.org")
        assert post_application(client, data).status_code == 303


def test_one_email_address_gets_429_with_retry_after_while_another_gets_through(
    app: Flask, client: FlaskClient, smtp_server: Received
) -> None:
    with changed_settings(app, applications_per_email_day=2):
        for number in range(2):
            from_client(client, f"192.0.2.{number + 1}")
            assert post_application(client, valid_form()).status_code == 303

        from_client(client, "192.0.2.99")
        shouted = valid_form(business_contact_email="An.Janssens@PENSIONS.example")
        refused = post_application(client, shouted)
        assert refused.status_code == 429
        assert 23 * 3600 < int(refused.headers["Retry-After"]) <= 24 * 3600
        page = refused.get_data(as_text=True)
        assert "for this business contact&#39;s e-mail address" in page
        assert "Please try again in 24 hours." in page
        assert len(smtp_server.messages) == 2

        other = valid_form(business_contact_email="someone.else@pensions.example")
        assert post_application(client, other).status_code == 303


def test_a_client_refused_for_its_own_address_spends_nothing_of_the_emails_budget(
    app: Flask, client: FlaskClient
) -> None:
    with changed_settings(app, applications_per_client_hour=1, applications_per_email_day=1):
        from_client(client, "192.0.2.50")
        mine = valid_form(business_contact_email="mine@example.org")
        assert post_application(client, mine).status_code == 303
        victims = valid_form(business_contact_email="victim@example.org")
        assert post_application(client, victims).status_code == 429

        from_client(client, "198.51.100.50")  # the address's owner, elsewhere
        assert post_application(client, victims).status_code == 303


def test_an_invalid_form_is_not_counted(app: Flask, client: FlaskClient) -> None:
    with changed_settings(app, applications_per_client_hour=1):
        for _ in range(3):
            assert post_application(client, valid_form(use_case="short")).status_code == 422
        assert post_application(client, valid_form()).status_code == 303


def test_an_ipv6_client_counts_with_its_whole_64_network() -> None:
    assert client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:2:ffff:ffff:ffff:fffe") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_network("192.0.2.1") == "192.0.2.1"


def test_junk_for_an_enterprise_number_does_not_stop_the_real_applicant(
    app: Flask, client: FlaskClient, smtp_server: Received
) -> None:
    number = "BE 0123.456.749"
    for junk in range(6):
        from_client(client, f"203.0.113.{junk + 1}")
        data = valid_form(
            enterprise_number=number,
            organisation_name=f"Not the Pension Service {junk}",
            business_contact_email=f"junk{junk}@junk.example",
        )
        assert post_application(client, data).status_code == 303
        confirm(client, confirmation_path(smtp_server.last_to(f"junk{junk}@junk.example")))

    from_client(client, "192.0.2.200")
    assert post_application(client, valid_form(enterprise_number=number)).status_code == 303
    response = confirm(
        client, confirmation_path(smtp_server.last_to("an.janssens@pensions.example"))
    )
    assert response.status_code == 303
    db.session.rollback()
    real = db.session.scalars(
        select(SenderApplication).where(
            SenderApplication.organisation_name == "Federal Pension Service"
        )
    ).one()
    assert real.status == "pending"
    counts = same_enterprise_number(real.enterprise_number)
    assert (counts.total, counts.waiting) == (7, 7)  # what staff weigh it against


@pytest.mark.slow
def test_the_counts_are_shared_through_redis_by_every_web_process(
    app: Flask, client: FlaskClient
) -> None:
    # Counts in Redis outlive the test: addresses of its own keep reruns apart.
    network = uuid.uuid4().hex
    address = f"2001:db8:{network[:4]}:{network[4:8]}::1"
    from_client(client, address)
    data = valid_form(business_contact_email=f"{network}@pensions.example")
    with changed_settings(app, redis_url=REDIS_URL, applications_per_client_hour=1):
        assert post_application(client, data).status_code == 303
        forget_application_limits(app)  # another process: nothing counted in its memory
        refused = post_application(client, data)
        assert refused.status_code == 429
        assert "from your network" in refused.get_data(as_text=True)
        assert int(refused.headers["Retry-After"]) > 3500
    redis = Redis.from_url(REDIS_URL)
    keys = redis.keys(f"{KEY_PREFIX}*")
    assert keys
    hidden = client_network(address).encode()
    assert not any(hidden in key for key in keys)  # addresses only as HMACs


def test_with_redis_down_the_form_stays_open_and_each_process_still_counts(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with changed_settings(app, redis_url=closed, applications_per_client_hour=1):
        assert post_application(client, valid_form()).status_code == 303
        assert post_application(client, valid_form()).status_code == 429
    assert "Redis cannot be reached" in caplog.text
