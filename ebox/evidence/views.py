"""What a verifier of eBox's evidence and proofs needs, published for download: the seal's
certificates and the evidence schema."""

from __future__ import annotations

from flask import Blueprint, Response

from ebox.evidence.services import platform_seal
from ebox.evidence.xml import SCHEMA_PATH

bp = Blueprint("evidence", __name__, url_prefix="/evidence")

PEM_TYPE = "application/x-pem-file"


@bp.get("/seal-root.pem")
def seal_root() -> Response:
    """The root CA that eBox's sealing certificate chains to: what a PDF reader, xmlsec1 or
    `ebox evidence verify --root` is told to trust. Public, like any CA certificate."""
    return _pem(platform_seal().root_pem, "ebox-seal-root.pem")


@bp.get("/seal.pem")
def seal_certificate() -> Response:
    return _pem(platform_seal().cert_pem, "ebox-seal.pem")


@bp.get("/Evidence-v1.xsd")
def evidence_schema() -> Response:
    """The schema every sealed evidence follows."""
    return Response(SCHEMA_PATH.read_bytes(), content_type="text/xml; charset=utf-8")


def _pem(data: bytes, file_name: str) -> Response:
    response = Response(data, content_type=PEM_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
