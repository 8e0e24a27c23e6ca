"""Webhooks: a sender's subscriptions, and the worker's signed deliveries of its events."""
