"""The hashes that seal audit events and anchors: SHA-256 of canonical JSON of their fields.

Both writing (ebox.audit.services) and checking (ebox.audit.verification) use these, from the
values alone (an ORM object's or a row's), so that both compute exactly the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64

_EVENT_FIELDS = (
    "actor_type",
    "actor_id",
    "action",
    "subject_type",
    "subject_id",
    "details",
    "previous_hash",
)


def event_hash(event: Mapping[Any, Any]) -> str:
    """The hash of an event of a chain: its fields, its place (chain, seq) and the hash before.

    Covering the place means an event cannot be moved to another chain or position, even with
    its previous_hash rewritten to fit there.
    """
    fields = _common_fields(event)
    fields["chain"] = event["chain"]
    fields["seq"] = event["seq"]
    return _digest(fields)


def legacy_event_hash(event: Mapping[Any, Any]) -> str:
    """The hash of an event written while the log was a single chain (before migration 0011)."""
    return _digest(_common_fields(event))


def anchor_hash(anchor: Mapping[Any, Any]) -> str:
    return _digest(
        {
            "id": anchor["id"],
            "created_at": _moment(anchor["created_at"]),
            "heads": anchor["heads"],
            "previous_hash": anchor["previous_hash"],
        }
    )


def _common_fields(event: Mapping[Any, Any]) -> dict[str, Any]:
    fields = {name: event[name] for name in _EVENT_FIELDS}
    fields["occurred_at"] = _moment(event["occurred_at"])
    return fields


def _moment(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def _digest(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
