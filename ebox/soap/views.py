"""The SOAP endpoints and their WSDL."""

from flask import Blueprint

bp = Blueprint("soap", __name__, url_prefix="/soap")
