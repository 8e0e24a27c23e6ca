"""Demo helpers, registered only outside production: the identity provider and the mail viewer.

The mail viewer shows the messages captured on disk when no SMTP server is configured, so that a
newcomer can read the confirmation code eBox sent. It shows the text part only: an HTML part
would need inline styles the content security policy forbids.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue

from ebox.mail.queries import list_captured, read_captured

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.get("/mail")
def mail_list() -> ResponseReturnValue:
    return render_template("demo/mail_list.html", messages=list_captured())


@bp.get("/mail/<name>")
def mail_message(name: str) -> ResponseReturnValue:
    message = read_captured(name)
    if message is None:
        abort(404)
    return render_template("demo/mail_message.html", message=message)
