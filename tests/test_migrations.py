"""The migrations build exactly the schema the models declare: a column, an index or a
constraint added to one and not the other is a failing test, not a surprise in production."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from ebox.extensions import db


# SQLite cannot reflect expression indexes (the sender's MessageID), so it cannot be compared.
@pytest.mark.postgres_only
def test_the_migrations_and_the_models_describe_the_same_schema(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []
