"""The OpenAPI document served at /api/v1/openapi.json is a valid OpenAPI 3.1 document, and it
describes exactly the routes the api blueprint has: each with exactly its methods."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

# The methods a route answers that no document lists: werkzeug adds them to every route.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
DOCUMENTED_METHODS = {"get", "put", "post", "delete", "patch"}


def served_document(client: FlaskClient) -> dict[str, object]:
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    document: dict[str, object] = answer.get_json()
    return document


def documented_operations(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {
        (path, method.upper())
        for path, item in paths.items()
        for method in item
        if method in DOCUMENTED_METHODS
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def as_documented_path(rule: str) -> str:
    """/api/v1/messages/<message_id> as the document writes it: /api/v1/messages/{messageId}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "{" + _camel(m.group(1)) + "}", rule)


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    return {
        (as_documented_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in (rule.methods or set()) - IMPLICIT_METHODS
    }


def test_the_served_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    document = served_document(client)
    assert str(document["openapi"]).startswith("3.1.")
    validate(document)
    ids = [
        operation["operationId"]
        for item in document["paths"].values()  # type: ignore[union-attr]
        for method, operation in item.items()
        if method in DOCUMENTED_METHODS
    ]
    assert len(ids) == len(set(ids)), "operationId must be unique"


def test_every_route_is_documented_with_exactly_its_methods(
    app: Flask, client: FlaskClient
) -> None:
    documented = documented_operations(served_document(client))
    routed = routed_operations(app)
    assert routed - documented == set(), "routes of the api blueprint missing from the document"
    assert documented - routed == set(), "operations of the document that no route serves"
    assert ("/api/v1/messages:search", "POST") in routed  # the colon is literal, not a variable


def test_an_undocumented_route_is_noticed(app: Flask, client: FlaskClient) -> None:
    """The comparison above can fail: a route added without its description is found."""
    documented = documented_operations(served_document(client))
    assert ("/api/v1/messages/{messageId}", "GET") in documented
    rules = [
        ("/api/v1/messages/<message_id>/notes", {"GET", "HEAD", "OPTIONS"}),
        ("/api/v1/token", {"POST", "DELETE", "OPTIONS"}),
    ]
    found = {
        (as_documented_path(rule), method)
        for rule, methods in rules
        for method in methods - IMPLICIT_METHODS
    }
    assert found - documented == {
        ("/api/v1/messages/{messageId}/notes", "GET"),
        ("/api/v1/token", "DELETE"),
    }


def test_an_invalid_document_is_refused(client: FlaskClient) -> None:
    document = served_document(client)
    document["paths"]["/api/v1/token"]["post"]["responses"] = "none"  # type: ignore[index]
    with pytest.raises(OpenAPIValidationError):
        validate(document)
