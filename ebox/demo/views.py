"""Demo helpers, registered only outside production: the identity provider and the mail viewer."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("demo", __name__, url_prefix="/demo")
