"""A Python client generated from the served OpenAPI document (openapi-python-client), used as an
integrator would: it publishes a message with two documents, reads its status and pulls the
events until it finds the message's publication. Only the generated models and functions talk
to eBox; the access token comes from the token endpoint (the generated client has no part in
signing a client assertion)."""

from __future__ import annotations

import hashlib
import importlib
import io
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from tests.api.api_helpers import live_access_token
from tests.api.conftest import ApiSender
from tests.factories import create_citizen, make_png
from tests.live_server import LiveServer

PACKAGE = "ebox_rest_client"
# No formatter run on the output (the default runs ruff): nothing to fetch, a second saved.
GENERATOR_CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture(scope="module")
def generated(api_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client package generated from the live server's document, importable."""
    folder = tmp_path_factory.mktemp("generated-client")
    answer = requests.get(f"{api_server.url}/api/v1/openapi.json", timeout=30)
    assert answer.status_code == 200
    (folder / "openapi.json").write_bytes(answer.content)
    (folder / "config.yaml").write_text(GENERATOR_CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--config",
            str(folder / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(folder))
    try:
        yield PACKAGE
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def part(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def test_a_generated_client_publishes_two_documents_reads_the_status_and_pulls_the_event(
    generated: str, api_server: LiveServer, api_sender: ApiSender
) -> None:
    client_module, models, types = (part(generated, n) for n in ("client", "models", "types"))
    publish_message = part(generated, "api.messages.publish_message")
    get_message = part(generated, "api.messages.get_message")
    list_events = part(generated, "api.events.list_events")
    recipient = create_citizen().national_number
    db.session.commit()  # an open transaction of this test would hold back events after it
    letter, plan = make_pdf("Assessment", ["Your tax assessment"]), make_png(40, 20)
    documents = [("assessment.pdf", "application/pdf", letter), ("plan.png", "image/png", plan)]
    token = live_access_token(api_server.url, api_sender.identity, api_sender.client_id)
    client = client_module.AuthenticatedClient(base_url=api_server.url, token=token)

    body = models.PublishMessageBody(
        message=models.Publication(
            recipient=recipient,
            message_type=api_sender.message_type.code,
            language=models.PublicationLanguage("nl"),
            title="Aanslagbiljet",
            reference=models.ReferenceQuery(ticket=f"GEN-{secrets.token_hex(4)}"),
            documents=[
                models.SubmittedDocument(
                    file_name=name,
                    media_type=models.SubmittedDocumentMediaType(media_type),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
                for name, media_type, data in documents
            ],
        ),
        documents=[
            types.File(payload=io.BytesIO(data), file_name=name, mime_type=media_type)
            for name, media_type, data in documents
        ],
    )
    with client:
        published = publish_message.sync_detailed(
            client=client, body=body, idempotency_key=secrets.token_hex(16)
        )
        assert published.status_code == 201, published.content
        assert isinstance(published.parsed, models.PublishedMessage)
        message_id = str(published.parsed.id)
        assert published.headers["Location"].endswith(f"/api/v1/messages/{message_id}")

        status = get_message.sync(client=client, message_id=message_id)
        assert isinstance(status, models.Message)
        assert status.status == models.MessageStatusStatus.PUBLISHED
        assert [(d.file_name, d.size_bytes) for d in status.documents] == [
            ("assessment.pdf", len(letter)),
            ("plan.png", len(plan)),
        ]

        events, cursor = pull_events(list_events, client, after=types.UNSET)
        assert [(event.type_, str(event.message_id)) for event in events] == [
            (models.EventType.MESSAGE_PUBLISHED, message_id)
        ]
        assert events[0].data.registered is False
        assert pull_events(list_events, client, after=cursor, wait=0)[0] == []


def pull_events(
    list_events: ModuleType, client: object, *, after: object, wait: float = 10.0
) -> tuple[list[object], str]:
    """The events after the cursor, polling as a back office does until there are some (an
    event is served once every transaction older than its own has ended)."""
    deadline = time.monotonic() + wait
    while True:
        page = list_events.sync(client=client, after=after, limit=100)
        assert page is not None and hasattr(page, "events"), page
        if page.events or time.monotonic() >= deadline:
            return list(page.events), str(page.next_)
        time.sleep(0.1)
