"""Retention as jobs, run on the schedule in ebox/schedule.py."""

from __future__ import annotations

from ebox.retention import services


def purge_expired_documents() -> int:
    return services.purge_expired().documents


def remove_orphan_objects() -> int:
    return services.remove_orphan_objects()
