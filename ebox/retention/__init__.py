"""Retention: documents are deleted at the expiry their sender chose; a minimal record stays."""
