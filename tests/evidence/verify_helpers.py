"""The verify command as a sender runs it, on the files of a registered document of the test
platform."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskCliRunner

from ebox.evidence.jobs import make_proof
from ebox.evidence.services import chain_of, latest_proof, platform_seal
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.services import confirm_receipt
from tests.factories import create_citizen, create_document


def opened_registered_document() -> Document:
    document = create_document(create_citizen(), is_registered=True, title="Formal notice")
    confirm_receipt(document=document)
    db.session.commit()
    return document


def proof_files(document: Document, folder: Path) -> tuple[Path, list[Path]]:
    assert make_proof(str(document.id)) is not None
    proof = latest_proof(document.id)
    assert proof is not None
    pdf = folder / "proof.pdf"
    pdf.write_bytes(proof.pdf)
    xmls = []
    for item in chain_of(document.id):
        path = folder / f"{item.position}-{item.event}.xml"
        path.write_bytes(item.xml)
        xmls.append(path)
    return pdf, xmls


def platform_trust(folder: Path) -> list[object]:
    """--root and --seal-cert naming the platform's own seal, as eBox publishes them."""
    seal = platform_seal()
    (folder / "seal-root.pem").write_bytes(seal.root_pem)
    (folder / "seal.pem").write_bytes(seal.cert_pem)
    return ["--root", folder / "seal-root.pem", "--seal-cert", folder / "seal.pem"]


def verify(runner: FlaskCliRunner, *args: object) -> tuple[int, str]:
    result = runner.invoke(args=["ebox", "evidence", "verify", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
