"""Every operation of the served OpenAPI document, called by schemathesis against the live
server with valid and invalid input: never a server error, and every answer (status, content
type, headers, body) one the document describes.

schemathesis's own engine runs its phases (the document's examples, the coverage of each
parameter's edge cases, then random fuzzing) as `st run --checks all` would; its pytest plugin
is not used, as it does not work with the pytest this project pins. The calls carry an access
token a provider gets from the token endpoint once in a while, as a back office does (each
client assertion is accepted once). The token endpoint is fuzzed without one: garbage there must
be refused as a documented problem, never answered with a 5xx.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from schemathesis import AuthContext, Case
from schemathesis.engine import Status, events, from_schema
from schemathesis.schemas import BaseSchema

from tests.api.api_helpers import live_access_token
from tests.api.conftest import ApiSender
from tests.factories import create_citizen, create_document
from tests.live_server import LiveServer

# Enough to meet every operation's edge cases in CI in seconds; the slow variant digs more.
QUICK_EXAMPLES = 20
LONG_EXAMPLES = 500
TOKEN_REFRESH_SECONDS = 120  # tokens live 5 minutes
# The checks on every answer. Not the ones about what a valid request should get (positive
# data acceptance): a schema-valid token request with a made-up assertion is rightly refused.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
]


def _with_known_messages(document: dict[str, Any], message_ids: list[str]) -> dict[str, Any]:
    """The document with real message ids as the messageId examples: the examples phase then
    finds a message, and fuzzing tries other ids beside them."""
    parameter = document["components"]["parameters"]["MessageId"]
    parameter["schema"] = {**parameter["schema"], "examples": message_ids}
    return document


def load_fuzzed_api(
    server: LiveServer,
    api_sender: ApiSender,
    message_ids: list[str],
    examples: int,
    change: Callable[[dict[str, Any]], None] | None = None,
) -> BaseSchema:
    answer = requests.get(f"{server.url}/api/v1/openapi.json", timeout=30)
    assert answer.status_code == 200, answer.text
    document = _with_known_messages(answer.json(), message_ids)
    if change is not None:
        change(document)
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=server.url, workers=1)
    schema.config.generation.update(max_examples=examples, deterministic=True)
    schema.config.checks.update(included_check_names=CHECKS)
    # Read now: the engine calls the provider from threads without the application context.
    identity, client_id = api_sender.identity, api_sender.client_id

    @schema.auth(refresh_interval=TOKEN_REFRESH_SECONDS).skip_for(operation_id="requestToken")
    class BearerToken:
        def get(self, case: Case, context: AuthContext) -> str:
            return live_access_token(server.url, identity, client_id)

        def set(self, case: Case, data: str, context: AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


def failures_of(schema: BaseSchema) -> tuple[list[str], set[str]]:
    """What schemathesis found wrong, one line each with a curl command to reproduce it, and
    the operations it called."""
    found: list[str] = []
    called: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.recorder.interactions:
                called.add(event.recorder.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.append(
                            f"{event.recorder.label} {check.name}: {failure.title} "
                            f"{failure.message[:600]}\n  {check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: error {event.info.title}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return sorted(set(found)), called


@pytest.fixture
def known_messages(app: Flask, api_sender: ApiSender) -> list[str]:
    """A published message of the sender and a registered one."""
    citizen = create_citizen()
    published = create_document(citizen, message_type=api_sender.message_type)
    registered = create_document(citizen, message_type=api_sender.message_type, is_registered=True)
    return [str(published.id), str(registered.id)]


def _every_operation(schema: BaseSchema) -> set[str]:
    return {result.ok().label for result in schema.get_all_operations()}


def test_every_operation_answers_as_documented(
    api_server: LiveServer, api_sender: ApiSender, known_messages: list[str]
) -> None:
    schema = load_fuzzed_api(api_server, api_sender, known_messages, QUICK_EXAMPLES)
    found, called = failures_of(schema)
    assert found == [], "\n".join(found)
    assert _every_operation(schema) <= called


def test_an_answer_the_document_does_not_describe_is_found(
    api_server: LiveServer, api_sender: ApiSender, known_messages: list[str]
) -> None:
    """The run above can fail: with the status's readAt left out of the document (and no other
    member allowed), schemathesis reports the answers that have one."""

    def forget_read_at(document: dict[str, Any]) -> None:
        status = document["components"]["schemas"]["MessageStatus"]
        status["required"].remove("readAt")
        del status["properties"]["readAt"]
        status["additionalProperties"] = False

    schema = load_fuzzed_api(api_server, api_sender, known_messages, 5, forget_read_at)
    schema.config.phases.update(phases=["examples"])
    found, _called = failures_of(schema)
    assert [line.split(":")[0] for line in found] == [
        "GET /api/v1/messages/{messageId} response_schema_conformance"
    ]
    assert "Additional properties are not allowed" in found[0] and "readAt" in found[0]


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("EBOX_TEST_LONG_FUZZ"),
    reason="minutes long: run with EBOX_TEST_LONG_FUZZ=1 (before a release, after API changes)",
)
def test_every_operation_answers_as_documented_at_length(
    api_server: LiveServer, api_sender: ApiSender, known_messages: list[str]
) -> None:
    schema = load_fuzzed_api(api_server, api_sender, known_messages, LONG_EXAMPLES)
    schema.config.generation.update(deterministic=False)
    found, called = failures_of(schema)
    assert found == [], "\n".join(found)
    assert _every_operation(schema) <= called
