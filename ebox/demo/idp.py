"""The demo SAML identity provider (to be written)."""

from flask import Blueprint

bp = Blueprint("demo_idp", __name__, url_prefix="/demo/idp")
