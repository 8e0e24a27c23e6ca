"""Worker jobs of events."""

from __future__ import annotations

from ebox.events import services


def forget_old_events() -> int:
    """Periodic: the events older than EVENT_RETENTION go, in committed batches."""
    return services.forget_old_events()
