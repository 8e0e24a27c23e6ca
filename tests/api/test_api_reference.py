"""The reference pages integrators read are the document the service serves."""

from __future__ import annotations

import json
from pathlib import Path

from ebox.api.openapi import document
from ebox.api.openapi.reference import EXAMPLE_URL, as_json, as_markdown

INTEGRATION = Path(__file__).resolve().parents[2] / "docs" / "integration"


def test_the_reference_pages_are_generated_from_the_current_document() -> None:
    served = document(EXAMPLE_URL)
    assert (INTEGRATION / "openapi.json").read_text() == as_json(served), (
        "docs/integration/openapi.json is behind: run scripts/api-reference"
    )
    assert (INTEGRATION / "api-reference.md").read_text() == as_markdown(served), (
        "docs/integration/api-reference.md is behind: run scripts/api-reference"
    )


def test_the_document_names_this_ebox_as_server_and_token_url() -> None:
    served = json.loads(as_json(document("https://ebox.test")))
    flows = served["components"]["securitySchemes"]["clientCredentials"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "https://ebox.test/api/v1/token"
    assert served["servers"][0]["url"] == "https://ebox.test"


def test_every_operation_documents_its_refusals_as_problems() -> None:
    served = document(EXAMPLE_URL)
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            if path == "/api/v1/openapi.json":
                continue
            statuses = set(operation["responses"])
            assert {"400", "401", "429", "503"} & statuses, (method, path)
            assert "503" in statuses, f"{method.upper()} {path} documents no 503"
