"""Errors every layer may raise, defined in a module that imports nothing of eBox."""

from __future__ import annotations


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says why."""
