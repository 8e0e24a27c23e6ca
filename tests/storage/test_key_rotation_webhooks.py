"""Webhook subscriptions keep their signing secret wrapped by a master key: the rotation
re-wraps it, the start-up check and `ebox keys verify` know it, and once the old key is gone
deliveries are still signed with the secret the sender was shown."""

from __future__ import annotations

import base64

import pytest
from flask import Flask

from ebox.config import Settings
from ebox.errors import ConfigError
from ebox.extensions import db
from ebox.restore_check import check_webhook_secrets
from ebox.storage.rotation import (
    check_documents_keys_configured,
    rotate,
    verify_webhook_secrets,
    webhook_secrets_by_key_id,
)
from ebox.webhooks.delivery import deliver_pending
from ebox.webhooks.models import WebhookSubscription
from ebox.webhooks.services import SECRET_PREFIX, secret_of
from tests.factories import create_message_type
from tests.storage.helpers import changed_settings
from tests.storage.test_key_rotation import BOTH_KEYS, ONLY_NEW_KEY
from tests.webhooks.receiver import running_receiver
from tests.webhooks.test_webhook_delivery import publish_some, reloaded, subscribe


def test_a_rotated_secret_still_signs_deliveries_once_the_old_key_is_removed(
    app: Flask, webhook_settings: Settings
) -> None:
    message_type = create_message_type()
    with running_receiver() as receiver:
        subscription = subscribe(message_type, receiver, webhook_settings)  # under k1
        shown = base64.b64decode(receiver.secret.removeprefix(SECRET_PREFIX))
        with changed_settings(app, **ONLY_NEW_KEY) as only_new:
            with pytest.raises(ConfigError, match="master key 'k1'"):
                check_documents_keys_configured(only_new)
            restored = check_webhook_secrets(sample=50)
        assert restored.failures == [
            "1 webhook secrets need master key 'k1', which is not configured"
        ]

        with changed_settings(app, **BOTH_KEYS):
            assert verify_webhook_secrets("k1").checked == 1
            state = rotate("k2", batch_size=1)
        assert (state.total, state.rewrapped, state.secrets_rewrapped) == (1, 1, 1)
        assert state.failures == []
        assert webhook_secrets_by_key_id() == {"k2": 1}

        with changed_settings(app, **ONLY_NEW_KEY) as only_new:
            publish_some(message_type, 2)
            check_documents_keys_configured(only_new)
            rotated = reloaded(subscription)
            assert secret_of(rotated, only_new) == shown
            report = verify_webhook_secrets("k2")
            restored = check_webhook_secrets(sample=50)
            delivered = deliver_pending(subscription.id)
    assert (report.checked, report.failures) == (1, [])
    assert (restored.summary, restored.ok) == ("1 of 1 sampled webhook secrets (of 1) unwrap", True)
    assert delivered == len(receiver.accepted) == 3  # 2 published, 1 read
    assert receiver.unverified == 0  # standardwebhooks verified every signature


def test_keys_commands_count_rewrap_and_check_webhook_secrets(
    app: Flask, webhook_settings: Settings
) -> None:
    with running_receiver() as receiver:
        kept = subscribe(create_message_type(), receiver, webhook_settings)
        damaged = subscribe(create_message_type(), receiver, webhook_settings)
    row = db.session.get(WebhookSubscription, damaged.id)
    assert row is not None
    row.secret_wrapped = bytes(40)  # no master key unwraps it
    db.session.commit()

    with changed_settings(app, **BOTH_KEYS):
        shown = app.test_cli_runner().invoke(args=["ebox", "keys", "status"])
        assert "master key 'k1': 0 documents, 2 webhook secrets (configured)" in shown.output
        rotated = app.test_cli_runner().invoke(args=["ebox", "keys", "rotate", "--to", "k2"])
        verified = app.test_cli_runner().invoke(args=["ebox", "keys", "verify", "--key-id", "k1"])
    assert rotated.exit_code == 1
    assert "0 document keys and 1 webhook secrets re-wrapped" in rotated.output
    assert f"webhook subscription {damaged.id} could not be unwrapped" in rotated.output
    assert "still under other master keys: 'k1' 1" in rotated.output
    assert reloaded(kept).secret_key_id == "k2"
    assert verified.exit_code == 1
    assert "verified 1 webhook secrets under 'k1': 0 unwrap" in verified.output
    assert f"webhook subscription {damaged.id} failed the check" in verified.output
