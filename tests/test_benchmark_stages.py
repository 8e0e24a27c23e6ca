"""benchmarks/publish.py --profile wraps functions by name: each must still exist there."""

from __future__ import annotations

import importlib

import pytest

from benchmarks.publish import REST_STAGES, STAGES


@pytest.mark.parametrize(("label", "where", "name"), [*STAGES, *REST_STAGES])
def test_each_profiled_stage_names_a_function_where_its_caller_finds_it(
    label: str, where: str, name: str
) -> None:
    assert callable(getattr(importlib.import_module(where), name, None)), label
