"""Institutions applying to publish in eBox: the public application form and its review."""
