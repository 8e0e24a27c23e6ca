"""The README is part of the product: its settings table and its commands must stay true."""

from pathlib import Path

from ebox.config import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_settings_table_is_the_one_the_declarations_make():
    # Regenerate it with: flask --app app ebox settings
    readme = (ROOT / "README.md").read_text()
    table = settings_table()
    assert table.count("| `EBOX_") > 40
    assert table in readme


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in readme
    assert "exec scripts/test" in ci
