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
    """The certificate that seals new evidence, followed by its intermediate CAs if any."""
    seal = platform_seal()
    return _pem(b"".join((seal.cert_pem, *seal.intermediate_pems)), "ebox-seal.pem")


@bp.get("/seal-certs.pem")
def seal_certificates() -> Response:
    """Every sealing certificate eBox's evidence may carry: the current one, then the earlier
    ones (EBOX_SEAL_PREVIOUS_CERTS), with their intermediate CAs: what a verifier who pins
    eBox's seal (`--seal-cert`) needs for evidence sealed before a renewal."""
    seal = platform_seal()
    return _pem(b"".join((*seal.all_cert_pems, *seal.all_intermediate_pems)), "ebox-seal-certs.pem")


@bp.get("/seal-roots.pem")
def seal_roots() -> Response:
    """The current root, then the roots of earlier sealing certificates, if a renewal changed
    the root (EBOX_SEAL_PREVIOUS_CA_CERTS)."""
    return _pem(b"".join(platform_seal().all_root_pems), "ebox-seal-roots.pem")


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
