"""The public application form for institutions."""

from flask import Blueprint

bp = Blueprint("applications", __name__, url_prefix="/apply")
