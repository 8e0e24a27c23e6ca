"""The checks run on an instance restored from a backup, before it serves anyone: the audit log
is intact, a sample of registered mail's proofs and evidence verify, a sample of documents under
every master key in use decrypts and matches its SHA-256 (which also shows that the object
store was restored with the database), and a sample of webhook subscriptions' secrets
unwraps. Read only: nothing is written."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select

from ebox.audit.services import verify_log
from ebox.config import current_settings
from ebox.evidence.models import DeliveryProof, Evidence
from ebox.evidence.services import chain_of, latest_proof, platform_seal, tsa_root
from ebox.evidence.verify_report import Trust
from ebox.extensions import db
from ebox.storage import rotation


@dataclass
class Check:
    """One check's outcome: a line saying what was checked, and what failed."""

    name: str
    summary: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def platform_trust() -> Trust:
    """This installation's own seal and timestamp authority, as configured: the current seal
    certificate and the earlier ones, under their roots, for evidence sealed years ago."""
    seal = platform_seal()
    return Trust(
        seal_root_pems=seal.all_root_pems,
        seal_cert_pems=seal.all_cert_pems,
        tsa_root_pem=tsa_root(),
        intermediate_pems=seal.all_intermediate_pems,
    )


def check_audit(anchors: Sequence[str] = ()) -> Check:
    report = verify_log(witnessed_anchors=anchors)
    check = Check(
        "audit log",
        f"{report.events} events in {report.chains} chains, {report.anchors} anchors"
        + (f", latest anchor hash {report.latest_anchor.hash}" if report.latest_anchor else ""),
    )
    check.failures.extend(report.all_problems())
    return check


def check_documents(sample: int) -> Check:
    """A sample of each master key's documents: opened, decrypted, compared with their digest."""
    return _check_wrapped(
        Check("documents"),
        rotation.documents_by_key_id(),
        lambda key_id: rotation.verify_sample(key_id, sample),
        what="documents",
        outcome="decrypt and match their SHA-256",
    )


def check_webhook_secrets(sample: int) -> Check:
    """A sample of each master key's webhook secrets: each unwraps, so deliveries can sign."""
    return _check_wrapped(
        Check("webhook secrets"),
        rotation.webhook_secrets_by_key_id(),
        lambda key_id: rotation.verify_webhook_secrets(key_id, sample),
        what="webhook secrets",
        outcome="unwrap",
    )


def _check_wrapped(
    check: Check,
    counts: dict[str, int],
    verify: Callable[[str], rotation.VerifyReport],
    *,
    what: str,
    outcome: str,
) -> Check:
    ring = current_settings().master_key_ring()
    checked = failed = 0
    for key_id in sorted(counts):
        if key_id not in ring:
            check.failures.append(
                f"{counts[key_id]} {what} need master key {key_id!r}, which is not configured"
            )
            continue
        report = verify(key_id)
        checked += report.checked
        failed += len(report.failures)
        check.failures.extend(
            f"{failure.kind} {failure.document_id} (key {key_id!r}): {failure.reason}"
            for failure in report.failures
        )
    total = sum(counts.values())
    check.summary = f"{checked - failed} of {checked} sampled {what} (of {total}) {outcome}"
    if total and not checked and not check.failures:
        check.failures.append(f"none of the {what} could be sampled")
    return check


def check_evidence(sample: int, trust: Trust) -> Check:
    """The latest proof of a sample of registered documents, with their evidence chain."""
    # Imported here: pyHanko's validation stack is loaded for this check only.
    from ebox.evidence.verify import verify_files

    proofs = db.session.scalar(select(func.count()).select_from(DeliveryProof)) or 0
    evidences = db.session.scalar(select(func.count()).select_from(Evidence)) or 0
    check = Check("registered mail")
    verified = 0
    for document_id in _sample_of_documents_with_proofs(sample):
        proof = latest_proof(document_id)
        if proof is None:
            continue
        files = [(f"proof of {document_id}", proof.pdf)] + [
            (f"evidence {item.position} ({item.event}) of {document_id}", item.xml)
            for item in chain_of(document_id)
        ]
        verified += 1
        for report in verify_files(files, trust):
            if not report.ok:
                failed = [text for passed, text in report.checks if not passed]
                check.failures.append(f"{report.name}: " + ("; ".join(failed) or "nothing read"))
    db.session.rollback()
    check.summary = (
        f"{verified} documents' latest proof and evidence verified "
        f"({proofs} proofs, {evidences} evidences in all)"
    )
    if proofs and not verified and not check.failures:
        check.failures.append("no proof could be sampled")
    return check


def _sample_of_documents_with_proofs(sample: int) -> list[uuid.UUID]:
    """Up to `sample` documents that have a proof: all of them when there are no more, else
    spread over the id range (index descents, whatever the size of the table). A random point
    can miss a document whose id closely follows another's, so a small set is read whole."""
    first = select(DeliveryProof.document_id).distinct().order_by(DeliveryProof.document_id)
    few = list(db.session.scalars(first.limit(sample + 1)))
    if len(few) <= sample:
        return few
    found: list[uuid.UUID] = []
    for _ in range(sample):
        start = uuid.UUID(int=random.getrandbits(128))
        statement = select(DeliveryProof.document_id).order_by(DeliveryProof.document_id).limit(1)
        document_id = db.session.scalar(statement.where(DeliveryProof.document_id >= start))
        if document_id is None:
            document_id = db.session.scalar(statement)
        if document_id is not None and document_id not in found:
            found.append(document_id)
    return found
