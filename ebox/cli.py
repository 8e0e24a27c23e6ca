"""The `flask --app app ebox ...` commands for operators. Each domain adds its own."""

from __future__ import annotations

import click
from flask.cli import AppGroup

ebox_group = AppGroup("ebox", help="eBox operator commands.")


@ebox_group.command("demo-data")
def demo_data_command() -> None:
    """Create demo senders, message types, citizens and documents (safe to run again)."""
    from ebox.demo.data import create_demo_data
    from ebox.transactions import commit

    summary = create_demo_data()
    commit()
    click.echo(summary)
