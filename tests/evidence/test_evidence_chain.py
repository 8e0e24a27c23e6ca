"""The evidence of a registered document: sealed when it is accepted and consigned, when the
citizen opens it (once, however many clicks) and when it expires unopened; kept after the
content is deleted; each link verified by xmlsec1 and chained to the one before."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from ebox.db_types import utcnow
from ebox.evidence.models import Evidence
from ebox.evidence.services import chain_of, platform_seal, record_evidence
from ebox.evidence.xml import CONTENT_HANDOVER_FAILURE, digest
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.services import confirm_receipt
from ebox.retention.services import purge_expired
from tests.evidence.tsa_server import unreachable_url
from tests.factories import create_citizen, create_document, login
from tests.mailbox.mailbox_helpers import post
from tests.retention.retention_helpers import expire


def events(document: Document) -> list[str]:
    db.session.expire_all()
    return [evidence.event for evidence in chain_of(document.id)]


def verified_by_xmlsec1(evidence: Evidence, folder: Path) -> bool:
    (folder / "root.pem").write_bytes(platform_seal().root_pem)
    (folder / f"{evidence.id}.xml").write_bytes(evidence.xml)
    result = subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", str(folder / "root.pem"),
         str(folder / f"{evidence.id}.xml")],
        capture_output=True, check=False,
    )  # fmt: skip
    return result.returncode == 0


def test_a_registered_publication_is_accepted_and_consigned_with_sealed_chained_evidence(
    app: Flask, tmp_path: Path
) -> None:
    document = create_document(create_citizen(), is_registered=True)
    chain = chain_of(document.id)
    assert [e.event for e in chain] == ["SubmissionAcceptance", "ContentConsignment"]
    assert [e.position for e in chain] == [1, 2]
    assert "<ev:PreviousEvidenceDigest Algorithm" in chain[1].xml.decode()
    assert digest(chain[0].xml).encode() in chain[1].xml
    assert document.sha256.encode() in chain[0].xml
    assert all(verified_by_xmlsec1(evidence, tmp_path) for evidence in chain)
    assert chain_of(create_document(create_citizen()).id) == []  # ordinary mail has none


def test_opening_records_the_handover_once(client: FlaskClient, tmp_path: Path) -> None:
    citizen = create_citizen()
    document = create_document(citizen, is_registered=True)
    login(client, citizen)
    for _ in range(3):
        post(client, f"/documents/{document.id}/receipt")
    assert events(document) == ["SubmissionAcceptance", "ContentConsignment", "ContentHandover"]
    handover = chain_of(document.id)[-1]
    assert verified_by_xmlsec1(handover, tmp_path)
    assert digest(chain_of(document.id)[1].xml).encode() in handover.xml


def test_an_unopened_registered_document_expires_with_non_retrieval_evidence_kept(
    app: Flask, tmp_path: Path
) -> None:
    citizen = create_citizen()
    unopened = create_document(citizen, is_registered=True)
    opened = create_document(citizen, is_registered=True)
    confirm_receipt(document=opened)
    for document in (unopened, opened):
        document.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    purge_expired()

    assert events(unopened) == [
        "SubmissionAcceptance",
        "ContentConsignment",
        "ContentHandoverFailure",
    ]
    failure = chain_of(unopened.id)[-1]
    assert b"not opened before its expiry" in failure.xml
    assert verified_by_xmlsec1(failure, tmp_path)
    assert events(opened)[-1] == "ContentHandover"
    db.session.refresh(unopened)
    assert unopened.deleted_at is not None and unopened.storage_key is None
    assert purge_expired().documents == 0 and len(events(unopened)) == 3


def test_a_document_is_opened_or_not_retrieved_never_both(app: Flask) -> None:
    # The purge sealed the non-retrieval; a confirmation loaded just before it comes too late.
    late = create_document(create_citizen(), is_registered=True)
    expire(late)
    purge_expired()
    stale = db.session.get(Document, late.id)
    assert stale is not None
    assert confirm_receipt(document=stale) is False
    db.session.commit()
    assert events(late) == ["SubmissionAcceptance", "ContentConsignment", "ContentHandoverFailure"]
    assert db.session.get(Document, late.id).read_at is None  # type: ignore[union-attr]

    # Opened first: a purge that still sees it unread seals nothing more.
    opened = create_document(create_citizen(), is_registered=True)
    confirm_receipt(document=opened)
    db.session.commit()
    assert record_evidence(opened, CONTENT_HANDOVER_FAILURE) is None
    assert events(opened) == ["SubmissionAcceptance", "ContentConsignment", "ContentHandover"]


def test_with_the_timestamp_authority_down_the_purge_keeps_only_unsealed_registered_documents(
    app: Flask,
) -> None:
    registered = create_document(create_citizen(), is_registered=True)
    another = create_document(create_citizen(), is_registered=True)
    plain = create_document(create_citizen())
    expire(registered, another, plain)
    settings = app.config["EBOX"]
    settings.tsa_url = unreachable_url()
    try:
        summary = purge_expired()
    finally:
        settings.tsa_url = ""

    db.session.expire_all()
    assert (summary.documents, summary.postponed) == (1, 2)
    assert db.session.get(Document, plain.id).deleted_at is not None  # type: ignore[union-attr]
    kept = db.session.get(Document, registered.id)
    assert kept is not None and kept.deleted_at is None and kept.title is not None
    assert events(registered) == ["SubmissionAcceptance", "ContentConsignment"]

    # The authority is back: the next run seals the non-retrievals, then deletes.
    assert purge_expired().documents == 2
    assert events(registered)[-1] == events(another)[-1] == "ContentHandoverFailure"
