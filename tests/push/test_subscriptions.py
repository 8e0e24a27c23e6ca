"""A device's subscription, as the profile page's button posts it: stored for the citizen, listed
and removable; everything in it is checked, since anyone can post anything (the endpoint is
where the worker will send a request: only allowed push services, never loopback in
production)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ebox.extensions import db
from ebox.push.models import PushSubscription
from ebox.push.services import MAX_DEVICES
from tests.factories import create_citizen, login
from tests.profile.forms_helper import csrf_token_from, submit

ANDROID_FIREFOX = "Mozilla/5.0 (Android 15; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def subscription(endpoint: str | None = None, **keys: Any) -> dict[str, Any]:
    """What PushSubscription.toJSON() gives, with a real P-256 key like a browser's."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    token = b64url(os.urandom(16))
    return {
        "endpoint": endpoint or f"https://fcm.googleapis.com/fcm/send/{token}",
        "expirationTime": None,
        "keys": {"p256dh": b64url(point), "auth": b64url(os.urandom(16)), **keys},
    }


@pytest.fixture
def citizen_client(client: FlaskClient) -> FlaskClient:
    login(client, create_citizen(given_name="Ilse"))
    client.environ_base["HTTP_USER_AGENT"] = ANDROID_FIREFOX
    return client


@pytest.fixture
def production(app: Flask) -> Iterator[None]:
    """Validation as production does it (the rest of the test application is unchanged)."""
    settings = app.config["EBOX"]
    settings.env = "production"
    try:
        yield
    finally:
        settings.env = "test"


def post(client: FlaskClient, data: Any, *, token: str | None = "") -> TestResponse:
    headers = {}
    if token is not None:
        headers["X-CSRFToken"] = token or csrf_token_from(client, "/profile/")
    return client.post("/profile/push/subscriptions", json=data, headers=headers)


def stored() -> list[PushSubscription]:
    db.session.expire_all()
    return list(db.session.scalars(select(PushSubscription).order_by(PushSubscription.id)))


def test_a_device_subscribes_is_listed_and_can_be_removed(citizen_client: FlaskClient) -> None:
    sent = subscription()
    assert post(citizen_client, sent).status_code == 201
    [row] = stored()
    assert row.endpoint == sent["endpoint"]
    assert (row.p256dh, row.auth) == (sent["keys"]["p256dh"], sent["keys"]["auth"])
    assert (row.browser, row.system) == ("Firefox", "Android")

    # The browser subscribing again (new keys) replaces the row: one per device.
    again = subscription(sent["endpoint"])
    assert post(citizen_client, again).status_code == 200
    [row] = stored()
    assert row.p256dh == again["keys"]["p256dh"]

    page = citizen_client.get("/profile/").get_data(as_text=True)
    assert "Notifications on this device" in page
    assert "Firefox on Android" in page
    match = re.search(r'data-push-key="([A-Za-z0-9_-]+)"', page)
    assert match and len(base64.urlsafe_b64decode(match.group(1) + "=")) == 65

    response = submit(citizen_client, "/profile/", f"/profile/push/subscriptions/{row.id}/remove")
    assert response.status_code == 303
    assert stored() == []


def test_another_citizens_device_cannot_be_removed(client: FlaskClient) -> None:
    owner = create_citizen(given_name="Jef")
    login(client, owner)
    post(client, subscription())
    [row] = stored()
    login(client, create_citizen(given_name="Kim"))
    response = submit(client, "/profile/", f"/profile/push/subscriptions/{row.id}/remove")
    assert response.status_code == 404
    assert len(stored()) == 1


def test_a_subscription_without_the_csrf_token_is_refused(citizen_client: FlaskClient) -> None:
    assert post(citizen_client, subscription(), token=None).status_code == 400
    assert post(citizen_client, subscription(), token="forged").status_code == 400
    assert stored() == []


def test_anonymous_visitors_cannot_subscribe(client: FlaskClient) -> None:
    response = client.post("/profile/push/subscriptions", json=subscription())
    assert response.status_code in (302, 400)
    assert stored() == []


@pytest.mark.parametrize(
    ("keys", "status"),
    [
        ({"p256dh": b64url(b"\x04" + b"\x01" * 63)}, 422),  # 64 bytes
        ({"p256dh": b64url(b"\x04" + b"\x01" * 64)}, 422),  # 65 bytes, not on the curve
        ({"p256dh": b64url(b"\x02" + b"\x01" * 64)}, 422),  # not uncompressed
        ({"p256dh": "not base64url!"}, 422),
        ({"auth": b64url(os.urandom(15))}, 422),
        ({"auth": b64url(os.urandom(17))}, 422),
        ({"auth": 16}, 422),
    ],
)
def test_keys_that_are_not_a_browsers_are_refused(
    citizen_client: FlaskClient, keys: dict[str, Any], status: int
) -> None:
    response = post(citizen_client, subscription(**keys))
    assert response.status_code == status
    assert response.get_json() == {"error": "This device's push service cannot be used by eBox."}
    assert stored() == []


@pytest.mark.parametrize("data", [["endpoint"], "text", {"endpoint": "x"}, {"keys": {}}])
def test_what_is_not_a_subscription_is_refused(citizen_client: FlaskClient, data: Any) -> None:
    assert post(citizen_client, data).status_code == 422
    assert stored() == []


def test_a_body_that_is_not_json_is_refused(citizen_client: FlaskClient) -> None:
    response = citizen_client.post(
        "/profile/push/subscriptions",
        data="endpoint=x",
        headers={"X-CSRFToken": csrf_token_from(citizen_client, "/profile/")},
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "This subscription cannot be read."}


REFUSED_IN_PRODUCTION = [
    "http://127.0.0.1:8080/push/abc",  # loopback: the worker would call itself
    "https://localhost/push/abc",
    "https://[::1]/push/abc",
    "https://10.0.0.5/push/abc",  # the private network
    "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
    "https://evil.example/push",  # not a push service
    "https://fcm.googleapis.com.evil.example/push",
    "https://notify.windows.com.evil.example/w/?token=abc",
    "https://notify.windows.com/w/?token=abc",  # *.notify.windows.com: subdomains only
    "http://fcm.googleapis.com/fcm/send/abc",  # not https
    "https://fcm.googleapis.com:8443/fcm/send/abc",  # another port
    "https://user:pass@fcm.googleapis.com/fcm/send/abc",
    "ftp://fcm.googleapis.com/fcm/send/abc",
    "https://fcm.googleapis.com/" + "a" * 1000,
    "not a url",
]


@pytest.mark.parametrize("endpoint", REFUSED_IN_PRODUCTION)
def test_production_refuses_endpoints_outside_the_allowed_push_services(
    citizen_client: FlaskClient, production: None, endpoint: str
) -> None:
    assert post(citizen_client, subscription(endpoint)).status_code == 422
    assert stored() == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://wns2-par02p.notify.windows.com/w/?token=abc",
        "https://web.push.apple.com/QGmpZ",
        "https://FCM.googleapis.com:443/fcm/send/abc",
    ],
)
def test_production_takes_the_push_services_of_the_common_browsers(
    citizen_client: FlaskClient, production: None, endpoint: str
) -> None:
    assert post(citizen_client, subscription(endpoint)).status_code == 201


def test_loopback_is_allowed_outside_production_but_nothing_else_off_the_list(
    citizen_client: FlaskClient,
) -> None:
    assert post(citizen_client, subscription("http://127.0.0.1:9/push/abc")).status_code == 201
    assert post(citizen_client, subscription("https://evil.example/push")).status_code == 422
    assert post(citizen_client, subscription("https://10.0.0.5/push")).status_code == 422


def test_a_citizen_has_at_most_ten_devices(citizen_client: FlaskClient) -> None:
    token = csrf_token_from(citizen_client, "/profile/")
    for _ in range(MAX_DEVICES):
        assert post(citizen_client, subscription(), token=token).status_code == 201
    response = post(citizen_client, subscription(), token=token)
    assert response.status_code == 422
    assert response.get_json() == {
        "error": "Notifications are on for 10 devices already: remove one first."
    }
    assert len(stored()) == MAX_DEVICES


def test_a_device_that_changes_hands_gets_the_pushes_of_its_new_citizen(
    client: FlaskClient,
) -> None:
    shared = subscription()
    login(client, create_citizen(given_name="Lode"))
    post(client, shared)
    mona = create_citizen(given_name="Mona")
    login(client, mona)
    assert post(client, shared).status_code == 201
    [row] = stored()
    assert row.citizen_id == mona.id


def test_without_pushes_there_is_no_section_and_no_endpoint(
    app: Flask, citizen_client: FlaskClient
) -> None:
    settings = app.config["EBOX"]
    token = csrf_token_from(citizen_client, "/profile/")
    settings.push_enabled = False
    try:
        assert "Notifications on this device" not in citizen_client.get("/profile/").get_data(
            as_text=True
        )
        assert post(citizen_client, subscription(), token=token).status_code == 404
    finally:
        settings.push_enabled = True
