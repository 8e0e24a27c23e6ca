"""Citizen login through the SAML federation, and logout."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

bp = Blueprint("accounts", __name__, url_prefix="/auth")


@bp.get("/login")
def login_page() -> ResponseReturnValue:
    return render_template("accounts/login.html")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    return render_template("accounts/login.html")
