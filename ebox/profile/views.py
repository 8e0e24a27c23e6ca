"""The citizen's first visit (conditions, e-mail) and profile (e-mail, language)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

bp = Blueprint("profile", __name__, url_prefix="/profile")


@bp.get("/welcome")
def onboarding() -> ResponseReturnValue:
    return render_template("profile/onboarding.html")


@bp.get("/")
def show() -> ResponseReturnValue:
    return render_template("profile/onboarding.html")


@bp.post("/language")
def set_language() -> ResponseReturnValue:
    return render_template("profile/onboarding.html")
