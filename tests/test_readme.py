"""The README is part of the product: its settings table and its commands must stay true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_in_the_code_is_documented_in_the_readme():
    code = (ROOT / "ebox" / "config.py").read_text()
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r'_env(?:_int|_bool)?\("([A-Z0-9_]+)"', code))
    assert names, "no settings found in ebox/config.py"
    missing = sorted(name for name in names if f"`EBOX_{name}`" not in readme)
    assert missing == []


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in readme
    assert "exec scripts/test" in ci
