"""Independent verifiers, run as programs: xmlsec1 for sealed evidence, poppler's pdfsig (with
the trusted root in a fresh NSS database) for PDF proofs."""

from __future__ import annotations

import subprocess
from pathlib import Path


def xmlsec1_verify(xml_file: Path, trusted_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", str(trusted_root), str(xml_file)],
        capture_output=True,
        text=True,
        check=False,
    )


def nss_database(folder: Path, trusted_root: Path) -> Path:
    """An NSS database that trusts trusted_root, as a PDF reader's trust store would."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"],
        check=True,
        capture_output=True,
    )
    trust = ["-n", "root", "-t", "CT,C,C", "-i", str(trusted_root)]
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{folder}", *trust],
        check=True,
        capture_output=True,
    )
    return folder


def pdfsig(pdf: Path, trusted_root: Path, nss_folder: Path) -> str:
    """What pdfsig reports about the PDF's signatures, with trusted_root trusted."""
    database = nss_database(nss_folder, trusted_root)
    result = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{database}", str(pdf)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr
