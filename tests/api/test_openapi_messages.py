"""The served OpenAPI document is valid and names exactly the routes the blueprint has."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate


def test_the_document_is_valid_and_matches_the_routes(app: Flask, client: FlaskClient) -> None:
    served = client.get("/api/v1/openapi.json").get_json()
    validate(served)
    documented = {
        (path, method.upper()) for path, item in served["paths"].items() for method in item
    }
    routed = {
        (re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + _camel(m.group(1)) + "}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert documented == routed
    assert "/api/v1/messages:search" in served["paths"]


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)
