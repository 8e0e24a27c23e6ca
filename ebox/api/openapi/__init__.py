"""The OpenAPI 3.1 document of the REST API: the contract integrators generate clients from.

It is written by hand, in fragments by subject (base.yaml first, then the others in name
order), each with its `paths` and `components`; document() joins them and names this eBox's
public address. Tests check it against the routes the blueprint really has and against what the
endpoints really answer (schemathesis), so the document and the code cannot drift apart.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BASE = "base.yaml"


@functools.cache
def _joined() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((HERE / BASE).read_text(encoding="utf-8"))
    for fragment in sorted(HERE.glob("*.yaml")):
        if fragment.name == BASE:
            continue
        part = yaml.safe_load(fragment.read_text(encoding="utf-8")) or {}
        _merge(document, "paths", part.get("paths", {}), fragment.name)
        for kind, entries in part.get("components", {}).items():
            _merge(document.setdefault("components", {}), kind, entries, fragment.name)
    return document


def _merge(into: dict[str, Any], section: str, entries: dict[str, Any], source: str) -> None:
    target = into.setdefault(section, {})
    for name, entry in entries.items():
        if name in target:
            raise ValueError(f"{source} defines {section}/{name} a second time")
        target[name] = entry


def document(public_url: str) -> dict[str, Any]:
    """The whole document, its server and token URL this eBox's own."""
    joined = copy.deepcopy(_joined())
    joined["servers"] = [{"url": public_url, "description": "this eBox"}]
    flows = joined["components"]["securitySchemes"]["clientCredentials"]["flows"]
    flows["clientCredentials"]["tokenUrl"] = f"{public_url}/api/v1/token"
    return joined
