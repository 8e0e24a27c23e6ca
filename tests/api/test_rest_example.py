"""examples/rest_example.py, the client the integration guide points to, does what it says
against a served eBox: a token with private_key_jwt, a message with an attachment, the events."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType

import pytest

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from tests.api.conftest import ApiSender
from tests.factories import create_citizen, make_png
from tests.live_server import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rest_example.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rest_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def credentials(api_server: LiveServer, api_sender: ApiSender, tmp_path: Path) -> list[str]:
    """The example's options naming the served eBox and the sender's key and certificate."""
    (tmp_path / "key.pem").write_bytes(api_sender.identity.key_pem)
    (tmp_path / "cert.pem").write_bytes(api_sender.identity.cert_pem)
    return [
        f"--url={api_server.url}",
        f"--key={tmp_path / 'key.pem'}",
        f"--cert={tmp_path / 'cert.pem'}",
        f"--enterprise-number={api_sender.client_id}",
    ]


def test_the_example_publishes_with_an_attachment_and_then_reads_its_event(
    api_sender: ApiSender,
    credentials: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load_example()
    recipient = create_citizen().national_number
    db.session.commit()  # an open transaction here would hold back the events after it
    (tmp_path / "letter.pdf").write_bytes(make_pdf("Letter", ["Dear citizen"]))
    (tmp_path / "plan.png").write_bytes(make_png(30, 20))

    published = example.main(
        [
            *credentials,
            f"--recipient={recipient}",
            f"--message-type={api_sender.message_type.code}",
            f"--pdf={tmp_path / 'letter.pdf'}",
            f"--attach={tmp_path / 'plan.png'}",
        ]
    )
    assert published == 0
    message_id = capsys.readouterr().out.strip()

    deadline = time.monotonic() + 20
    events: list[dict[str, object]] = []
    while not events and time.monotonic() < deadline:
        assert example.main([*credentials, "--events"]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed[-1].startswith("next cursor: ")
        events = [json.loads(line) for line in printed[:-1]]
        if not events:
            time.sleep(0.2)
    assert [(event["type"], event["messageId"]) for event in events] == [
        ("message.published", message_id)
    ]


def test_the_example_prints_a_refusals_code_and_fails(
    api_sender: ApiSender,
    credentials: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load_example()
    (tmp_path / "letter.pdf").write_bytes(b"%PDF-1.7 not really a PDF")
    status = example.main(
        [
            *credentials,
            "--recipient=85073003328",
            f"--message-type={api_sender.message_type.code}",
            f"--pdf={tmp_path / 'letter.pdf'}",
        ]
    )
    assert status == 1
    assert "refused: NOT_A_PDF:" in capsys.readouterr().err
