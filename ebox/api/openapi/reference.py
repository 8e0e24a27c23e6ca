"""The OpenAPI document rendered as a reference page for integrators (docs/integration/).

scripts/api-reference writes docs/integration/api-reference.md and openapi.json from the
document the app serves; a test fails when either is behind, so the pages integrators read are
always the contract the code is held to.
"""

from __future__ import annotations

import json
from typing import Any

EXAMPLE_URL = "https://ebox.example"
METHODS = ("get", "put", "post", "delete", "patch")


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def as_markdown(document: dict[str, Any]) -> str:
    info = document["info"]
    lines = [
        f"# {info['title']} {info['version']} — reference",
        "",
        "Generated from the OpenAPI document the service serves at `/api/v1/openapi.json`",
        "(`scripts/api-reference`; a copy is `openapi.json` beside this page). How to use it,",
        "step by step: [rest-api.md](rest-api.md).",
        "",
        info.get("description", "").strip(),
        "",
        "## Endpoints",
        "",
    ]
    for path, operations in document["paths"].items():
        for method in METHODS:
            if method in operations:
                lines += _operation(method, path, operations[method], document)
    lines += ["## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def _resolved(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """item itself, or what its $ref ("#/components/...") points to."""
    reference = item.get("$ref")
    if not reference:
        return item
    target: Any = document
    for step in reference.removeprefix("#/").split("/"):
        target = target[step]
    return dict(target)


def _operation(
    method: str, path: str, operation: dict[str, Any], document: dict[str, Any]
) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", operation.get("summary", ""), ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    if operation.get("security") == []:
        lines += ["No access token needed.", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| Parameter | In | Required | Type | Meaning |", "|---|---|---|---|---|"]
        for parameter in parameters:
            lines.append(_parameter_row(_resolved(document, parameter)))
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media_type, content in body.get("content", {}).items():
            lines += [f"Body: `{media_type}`, {_type(content.get('schema', {}))}.", ""]
    lines += ["| Status | Meaning | Body |", "|---|---|---|"]
    for status, answer in operation.get("responses", {}).items():
        lines.append(_response_row(status, _resolved(document, answer)))
    return [*lines, ""]


def _parameter_row(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    meaning = _flat(parameter.get("description", ""))
    required = "yes" if parameter.get("required") else "no"
    return (
        f"| `{parameter['name']}` | {parameter['in']} | {required} | {_type(schema)} | {meaning} |"
    )


def _response_row(status: str, answer: dict[str, Any]) -> str:
    content = answer.get("content", {})
    bodies = ", ".join(
        f"`{kind}` {_type(part.get('schema', {}))}" for kind, part in content.items()
    )
    return f"| {status} | {_flat(answer.get('description', ''))} | {bodies or '—'} |"


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_flat(schema["description"]), ""]
    properties = schema.get("properties")
    if not properties:
        return [*lines, f"{_type(schema)}.", ""]
    required = set(schema.get("required", []))
    lines += ["| Member | Type | Required | Meaning |", "|---|---|---|---|"]
    for member, definition in properties.items():
        needed = "yes" if member in required else "no"
        meaning = _flat(definition.get("description", ""))
        lines.append(f"| `{member}` | {_type(definition)} | {needed} | {meaning} |")
    return [*lines, ""]


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " or ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if isinstance(kind, list):
        kind = " or ".join(str(each) for each in kind)
    if "format" in schema:
        kind = f"{kind} ({schema['format']})"
    for alternative in ("oneOf", "anyOf"):
        if alternative in schema:
            kind = " or ".join(_type(each) for each in schema[alternative])
    return str(kind)


def _flat(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
