"""A new seal certificate, as docs/operations.md says to install one: evidence and proofs sealed
before the renewal keep verifying (eBox's verifier, xmlsec1, pdfsig, the restore check), new ones
are sealed with the new certificate, and a chain that spans the renewal verifies as one."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskCliRunner
from lxml import etree

from ebox.evidence.jobs import make_proof
from ebox.evidence.models import DeliveryProof
from ebox.evidence.services import chain_of, platform_seal
from ebox.evidence.xml import NAMESPACES
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.services import confirm_receipt
from ebox.restore_check import check_evidence, platform_trust
from tests.evidence.verifiers import pdfsig, xmlsec1_verify
from tests.evidence.verify_helpers import verify
from tests.factories import create_citizen, create_document
from tests.pki import Issued, issue, issue_intermediate, make_ca

# Outside programs (xmlsec1, pdfsig, certutil): the PostgreSQL run is enough.
pytestmark = pytest.mark.slow

_SEAL_CACHE = "ebox.evidence.seal"


@dataclass(frozen=True)
class SealFiles:
    """What an operator installs: the seal's key, its certificate (with its intermediate CAs),
    its root, and the earlier certificates and roots."""

    seal: Issued
    root: Issued
    intermediates: Sequence[Issued] = ()
    previous: Sequence[Issued] = ()
    previous_roots: Sequence[Issued] = ()


Install = Callable[[SealFiles], None]


@pytest.fixture
def install(app: Flask, tmp_path: Path) -> Iterator[Install]:
    """Set the seal settings to files in a fresh folder, as a restart with them would (checked
    as at start, the seal read again); put everything back afterwards."""
    settings = app.config["EBOX"]
    names = ("seal_key", "seal_cert", "seal_ca_cert", "seal_previous_certs")
    names += ("seal_previous_ca_certs",)
    saved = {name: getattr(settings, name) for name in names}
    installed = 0

    def install_files(files: SealFiles) -> None:
        nonlocal installed
        installed += 1
        folder = tmp_path / f"seal-{installed}"
        folder.mkdir()
        paths = {
            "seal_key": write(folder / "key.pem", files.seal.key_pem),
            "seal_cert": write(
                folder / "cert.pem", files.seal.cert_pem, *(i.cert_pem for i in files.intermediates)
            ),
            "seal_ca_cert": write(folder / "root.pem", files.root.cert_pem),
            "seal_previous_certs": write(
                folder / "previous.pem", *(item.cert_pem for item in files.previous)
            )
            if files.previous
            else "",
            "seal_previous_ca_certs": write(
                folder / "previous-roots.pem", *(item.cert_pem for item in files.previous_roots)
            )
            if files.previous_roots
            else "",
        }
        for name, value in paths.items():
            setattr(settings, name, value)
        settings.check_key_files()
        app.extensions.pop(_SEAL_CACHE, None)

    yield install_files
    for name, value in saved.items():
        setattr(settings, name, value)
    app.extensions.pop(_SEAL_CACHE, None)


def write(path: Path, *pems: bytes) -> str:
    path.write_bytes(b"".join(pems))
    return str(path)


def pem_file(folder: Path, name: str, *issued: Issued) -> Path:
    return Path(write(folder / name, *(item.cert_pem for item in issued)))


def proofs_of(document: Document) -> list[bytes]:
    rows = db.session.query(DeliveryProof).filter_by(document_id=document.id)
    return [row.pdf for row in rows.order_by(DeliveryProof.version)]


def sealed_by(evidence_xml: bytes) -> list[str]:
    """The common names of the certificates in an evidence's ds:KeyInfo, in order."""
    root = etree.fromstring(evidence_xml)
    found = root.findall("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NAMESPACES)
    return [
        x509.load_der_x509_certificate(base64.b64decode(node.text)).subject.rfc4514_string()
        for node in found
    ]


def save(folder: Path, document: Document) -> tuple[list[Path], list[Path]]:
    """Every proof version of document and its evidence XMLs, as files."""
    pdfs = []
    for version, pdf in enumerate(proofs_of(document), start=1):
        pdfs.append(folder / f"proof-{document.id}-v{version}.pdf")
        pdfs[-1].write_bytes(pdf)
    xmls = []
    for item in chain_of(document.id):
        xmls.append(folder / f"evidence-{document.id}-{item.position}.xml")
        xmls[-1].write_bytes(item.xml)
    return pdfs, xmls


def test_evidence_and_proofs_sealed_before_a_renewal_under_the_same_root_still_verify(
    app: Flask, runner: FlaskCliRunner, install: Install, tmp_path: Path
) -> None:
    root = make_ca("Seal root")
    seal_2025, seal_2026 = issue(root, "eBox seal 2025"), issue(root, "eBox seal 2026")
    install(SealFiles(seal=seal_2025, root=root))
    spanning = create_document(create_citizen(), is_registered=True)  # accepted, consigned
    assert make_proof(str(spanning.id)) == 1

    install(SealFiles(seal=seal_2026, root=root, previous=[seal_2025]))
    confirm_receipt(document=spanning)  # the handover, sealed with the new certificate
    db.session.commit()
    assert make_proof(str(spanning.id)) == 2
    after = create_document(create_citizen(), is_registered=True)
    confirm_receipt(document=after)
    db.session.commit()
    assert make_proof(str(after.id)) == 1

    old_name, new_name = "CN=eBox seal 2025,O=eBox tests", "CN=eBox seal 2026,O=eBox tests"
    assert [sealed_by(item.xml) for item in chain_of(spanning.id)] == [
        [old_name],
        [old_name],
        [new_name],
    ]
    assert {tuple(sealed_by(item.xml)) for item in chain_of(after.id)} == {(new_name,)}
    spanning_pdfs, spanning_xmls = save(tmp_path, spanning)
    after_pdfs, after_xmls = save(tmp_path, after)

    # eBox's verifier, pinning both certificates as published at /evidence/seal-certs.pem.
    published = app.test_client().get("/evidence/seal-certs.pem")
    assert x509.load_pem_x509_certificates(published.data) == [
        seal_2026.certificate,
        seal_2025.certificate,
    ]
    (tmp_path / "seal-certs.pem").write_bytes(published.data)
    trust = ["--root", pem_file(tmp_path, "root.pem", root)]
    trust += ["--seal-cert", tmp_path / "seal-certs.pem"]
    code, output = verify(runner, *spanning_pdfs, *after_pdfs, *trust)
    assert code == 0, output
    assert output.count("eBox seal 2025") == 1 and output.count("eBox seal 2026") == 2
    for xmls in (spanning_xmls, after_xmls):
        code, output = verify(runner, *xmls, *trust)
        assert code == 0, output
        assert "one unbroken chain" in output

    # A verifier who pins the new certificate alone refuses what the old one sealed.
    only_new = ["--root", tmp_path / "root.pem"]
    only_new += ["--seal-cert", pem_file(tmp_path, "seal-2026.pem", seal_2026)]
    code, output = verify(runner, spanning_pdfs[0], *only_new)
    assert code == 1
    assert "is none of those given with --seal-cert" in output

    # xmlsec1 and pdfsig, trusting the root alone.
    for xml in spanning_xmls + after_xmls:
        checked = xmlsec1_verify(xml, tmp_path / "root.pem")
        assert checked.returncode == 0, checked.stderr
    for number, pdf in enumerate(spanning_pdfs + after_pdfs):
        report = pdfsig(pdf, tmp_path / "root.pem", tmp_path / f"nss-{number}")
        assert "Signature is Valid." in report and "Certificate is Trusted." in report, report

    # The restore check trusts the earlier certificate because it is configured, and only then.
    assert check_evidence(10, platform_trust()).ok
    install(SealFiles(seal=seal_2026, root=root))  # EBOX_SEAL_PREVIOUS_CERTS forgotten
    check = check_evidence(10, platform_trust())
    assert not check.ok
    assert any("none of those given with --seal-cert" in failure for failure in check.failures)


def test_a_renewal_under_a_new_root_through_an_intermediate_ca(
    app: Flask, runner: FlaskCliRunner, install: Install, tmp_path: Path
) -> None:
    old_root = make_ca("Seal root 2020")
    old_seal = issue(old_root, "eBox seal 2025")
    new_root = make_ca("Seal root 2026", path_length=1)
    intermediate = issue_intermediate(new_root, "Seal issuing CA 2026")
    new_seal = issue(intermediate, "eBox seal 2026")
    install(SealFiles(seal=old_seal, root=old_root))
    document = create_document(create_citizen(), is_registered=True)
    assert make_proof(str(document.id)) == 1

    install(
        SealFiles(
            seal=new_seal,
            root=new_root,
            intermediates=[intermediate],
            previous=[old_seal],
            previous_roots=[old_root],
        )
    )
    confirm_receipt(document=document)
    db.session.commit()
    assert make_proof(str(document.id)) == 2
    # The new evidence carries the intermediate CA beside the seal certificate.
    assert sealed_by(chain_of(document.id)[-1].xml) == [
        "CN=eBox seal 2026,O=eBox tests",
        "CN=Seal issuing CA 2026,O=eBox tests",
    ]
    pdfs, xmls = save(tmp_path, document)

    client = app.test_client()
    assert x509.load_pem_x509_certificates(client.get("/evidence/seal.pem").data) == [
        new_seal.certificate,
        intermediate.certificate,
    ]
    assert x509.load_pem_x509_certificates(client.get("/evidence/seal-roots.pem").data) == [
        new_root.certificate,
        old_root.certificate,
    ]
    roots = ["--root", pem_file(tmp_path, "old-root.pem", old_root)]
    roots += ["--root", pem_file(tmp_path, "new-root.pem", new_root)]
    pinned = ["--seal-cert", pem_file(tmp_path, "old-seal.pem", old_seal)]
    pinned += ["--seal-cert", pem_file(tmp_path, "new-seal.pem", new_seal)]  # no intermediate
    code, output = verify(runner, *pdfs, *roots, *pinned)
    assert code == 0, output
    code, output = verify(runner, *xmls, *roots, *pinned)
    assert code == 0, output
    assert output.count("the seal certificate chains to the trusted root") == 3

    # Under the new root alone, only what the new certificate sealed verifies.
    code, output = verify(runner, pdfs[1], "--root", tmp_path / "new-root.pem", *pinned)
    assert code == 1  # the PDF carries the older evidence
    code, output = verify(runner, xmls[2], "--root", tmp_path / "new-root.pem", *pinned)
    assert code == 0, output

    checked = xmlsec1_verify(xmls[2], tmp_path / "new-root.pem")
    assert checked.returncode == 0, checked.stderr
    checked = xmlsec1_verify(xmls[0], tmp_path / "old-root.pem")
    assert checked.returncode == 0, checked.stderr
    assert xmlsec1_verify(xmls[2], tmp_path / "old-root.pem").returncode != 0
    report = pdfsig(pdfs[1], tmp_path / "new-root.pem", tmp_path / "nss-new")
    assert "Signature is Valid." in report and "Certificate is Trusted." in report, report
    report = pdfsig(pdfs[0], tmp_path / "old-root.pem", tmp_path / "nss-old")
    assert "Signature is Valid." in report and "Certificate is Trusted." in report, report

    assert check_evidence(10, platform_trust()).ok


def test_evidence_sealed_by_a_certificate_not_under_the_trusted_root_is_refused(
    app: Flask, runner: FlaskCliRunner, install: Install, tmp_path: Path
) -> None:
    # Someone copies the names of eBox's issuing CA under a root of their own, and seals with a
    # certificate of it. Pinning that certificate does not make it chain to eBox's root.
    root = make_ca("Seal root 2026", path_length=1)
    intermediate = issue_intermediate(root, "Seal issuing CA 2026")
    foreign_root = make_ca("Seal root 2026", path_length=1)
    lookalike = issue_intermediate(foreign_root, "Seal issuing CA 2026")
    foreign_seal = issue(lookalike, "eBox seal 2026")
    install(
        SealFiles(
            seal=issue(intermediate, "eBox seal 2026"), root=root, intermediates=[intermediate]
        )
    )
    (tmp_path / "root.pem").write_bytes(platform_seal().root_pem)
    install(SealFiles(seal=foreign_seal, root=foreign_root, intermediates=[lookalike]))
    document = create_document(create_citizen(), is_registered=True)
    assert make_proof(str(document.id)) == 1
    pdfs, xmls = save(tmp_path, document)
    trust = ["--root", tmp_path / "root.pem"]
    trust += ["--seal-cert", pem_file(tmp_path, "seal.pem", foreign_seal, intermediate)]

    for name in (pdfs[0], xmls[0]):
        code, output = verify(runner, name, *trust)
        assert code == 1, output
        assert "does not chain to the trusted root" in output
    assert xmlsec1_verify(xmls[0], tmp_path / "root.pem").returncode != 0
    assert "Certificate is Trusted." not in pdfsig(pdfs[0], tmp_path / "root.pem", tmp_path / "nss")

    # An evidence carrying another leaf certificate beside the seal is refused as well.
    tree = etree.fromstring(chain_of(document.id)[0].xml)
    data = tree.find("ds:Signature/ds:KeyInfo/ds:X509Data", NAMESPACES)
    assert data is not None
    extra = etree.SubElement(data, f"{{{NAMESPACES['ds']}}}X509Certificate")
    someone = issue(root, "Someone else").certificate
    extra.text = base64.b64encode(someone.public_bytes(serialization.Encoding.DER)).decode()
    (tmp_path / "two-leaves.xml").write_bytes(etree.tostring(tree))
    code, output = verify(runner, tmp_path / "two-leaves.xml", *trust)
    assert code == 1
    assert "beside the seal that is not a CA certificate" in output
