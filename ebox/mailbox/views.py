"""The citizen's inbox and documents."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

bp = Blueprint("mailbox", __name__)


@bp.get("/")
def inbox() -> ResponseReturnValue:
    return render_template("mailbox/inbox.html")
