"""Stock WS-Security clients publish with their default settings, from the served WSDL alone:
node-soap's WSSecurityCert (examples/node/publish_example.js, run by Node) beside zeep
(examples/ebox_client.py). The documents land in the citizens' eBoxes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from flask import Flask
from sqlalchemy import select
from zeep.transports import Transport
from zeep.wsse.signature import BinarySignature, Signature

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.senders.models import Sender
from ebox.storage.services import open_content
from examples.ebox_client import fault_code, publish_pdf
from tests.factories import create_citizen, create_message_type
from tests.live_server import LiveServer
from tests.soap.node_example import run_node_example
from tests.soap.wss_helpers import Identity, SignedTimestamp, register

SAME_SECOND = Path(__file__).resolve().parent / "node_same_second.js"
GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "integration" / "README.md").read_text()
PDF = make_pdf("Tax assessment 2026", ["Your assessment for the income year 2025."])


@pytest.fixture
def sender(app: Flask, identity: Identity) -> Sender:
    sender = db.session.get(Sender, register(identity).sender_id)
    assert sender is not None
    create_message_type(sender, code="TAX")
    db.session.commit()
    return sender


def stored_for(national_number: str) -> list[Document]:
    db.session.expire_all()
    query = select(Document).where(Document.recipient_national_number == national_number)
    return list(db.session.scalars(query))


def content_of(document: Document) -> bytes:
    return open_content(
        storage_key=str(document.storage_key),
        content_key=bytes(document.content_key or b""),
        content_key_id=str(document.content_key_id),
    ).read()


@pytest.mark.slow
def test_node_soap_with_its_default_ws_security_publishes_a_pdf_for_the_citizen(
    soap_server: LiveServer, identity: Identity, sender: Sender, tmp_path: Path
) -> None:
    citizen = create_citizen()
    db.session.commit()

    result = run_node_example(
        soap_server.url,
        identity,
        tmp_path,
        PDF,
        *("--recipient", citizen.national_number, "--message-type", "TAX"),
        *("--title", "Tax assessment 2026", "--ticket", "NODE-TAX-1", "--language", "en"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    [document] = stored_for(citizen.national_number)
    assert f"EboxMessageId={document.id}" in result.stdout
    assert "Citizen has activated the eBox: yes" in result.stdout
    assert (document.sender_id, document.sender_ticket) == (sender.id, "NODE-TAX-1")
    assert (document.title, document.language) == ("Tax assessment 2026", "en")
    assert document.sha256 == hashlib.sha256(PDF).hexdigest()
    assert content_of(document) == PDF


@pytest.mark.slow
def test_node_soap_is_told_the_fault_code_when_eboxs_refuses(
    soap_server: LiveServer, identity: Identity, sender: Sender, tmp_path: Path
) -> None:
    citizen = create_citizen()
    db.session.commit()

    result = run_node_example(
        soap_server.url,
        identity,
        tmp_path,
        PDF,
        *("--recipient", citizen.national_number, "--message-type", "NOT_OURS"),
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Refused: MESSAGE_TYPE_UNKNOWN:" in result.stderr
    assert stored_for(citizen.national_number) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "second_answer"), [("one-client", "OK"), ("fresh-clients", "REPLAY")]
)
def test_node_soap_calls_within_one_second_differ_only_from_one_client(
    soap_server: LiveServer,
    identity: Identity,
    sender: Sender,
    tmp_path: Path,
    mode: str,
    second_answer: str,
) -> None:
    """A fresh WSSecurityCert numbers its ids from _0 and writes whole seconds: two of them
    sign the very same request within a second, the second of which is a replay. One client
    numbers on, as the guide advises."""
    (tmp_path / "key.pem").write_bytes(identity.key_pem)
    (tmp_path / "cert.pem").write_bytes(identity.cert_pem)
    wsdl = f"{soap_server.url}/soap/EboxMessage/v1?wsdl"
    command = ["node", str(SAME_SECOND), wsdl, str(tmp_path / "key.pem")]
    command += [str(tmp_path / "cert.pem"), mode]

    ran = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    assert ran.returncode == 0, ran.stderr
    outcome = json.loads(ran.stdout)
    assert outcome["sameSecond"], "both calls must be signed within one second"
    assert outcome["answers"] == ["OK", second_answer]


def test_zeep_with_the_example_signature_publishes_beside_it(
    zeep_client: zeep.Client, sender: Sender
) -> None:
    citizen = create_citizen()
    db.session.commit()

    answer = publish_pdf(
        zeep_client,
        recipient=citizen.national_number,
        message_type="TAX",
        title="Tax assessment 2026",
        pdf=PDF,
        file_name="assessment.pdf",
        ticket="ZEEP-TAX-1",
    )

    [document] = stored_for(citizen.national_number)
    assert str(document.id) == answer.EboxMessageId
    assert content_of(document) == PDF


class SignOnly:
    """zeep signing steps as they come, without their check of a signature on the answer (eBox
    signs none, which would hide the Fault behind SignatureVerificationFailed)."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def apply(self, envelope: Any, headers: Any) -> tuple[Any, Any]:
        for step in self.steps:
            envelope, headers = step.apply(envelope, headers)
        return envelope, headers

    def verify(self, envelope: Any) -> Any:
        return envelope


@pytest.mark.parametrize(
    ("signing", "code", "guide_row"),
    [
        ("Signature", "SIGNATURE_INVALID", "| zeep `Signature` |"),
        ("BinarySignature", "TIMESTAMP_INVALID", "| zeep `BinarySignature` |"),
        (
            "BinarySignature with a Timestamp",
            "SIGNATURE_ALGORITHM_REFUSED",
            "| zeep `BinarySignature` with a Timestamp;",
        ),
    ],
)
def test_zeeps_own_signers_as_they_come_get_the_fault_the_guide_pairs_with_a_fix(
    wsdl_url: str,
    identity: Identity,
    sender: Sender,
    tmp_path: Path,
    signing: str,
    code: str,
    guide_row: str,
) -> None:
    (tmp_path / "key.pem").write_bytes(identity.key_pem)
    (tmp_path / "cert.pem").write_bytes(identity.cert_pem)
    keys = (str(tmp_path / "key.pem"), str(tmp_path / "cert.pem"))
    steps: dict[str, list[Any]] = {
        "Signature": [Signature(*keys)],
        "BinarySignature": [BinarySignature(*keys)],
        "BinarySignature with a Timestamp": [SignedTimestamp(), BinarySignature(*keys)],
    }
    session = requests.Session()
    session.trust_env = False
    signer = SignOnly(steps[signing])
    client = zeep.Client(wsdl_url, wsse=signer, transport=Transport(session=session))

    with pytest.raises(zeep.exceptions.Fault) as refused:
        client.service.healthCheck(Level="PING")

    assert fault_code(refused.value) == code
    [row] = [line for line in GUIDE.splitlines() if line.startswith(guide_row)]
    assert f"`{code}`" in row
