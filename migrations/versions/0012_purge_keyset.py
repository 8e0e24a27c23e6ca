"""the documents table at national size: the purge continues after the last key it saw (its
index covers (expires_at, id)), the full index on expires_at that no query uses goes, and
autovacuum visits the table after a fixed share of changes rather than a fifth of it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:30:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


# With the default scale factor (0.2) autovacuum would wait for 50 M dead rows in a table of
# 250 M (docs/decisions/0017): months of the purge's and the readers' updates.
_AUTOVACUUM = "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.005"


def upgrade():
    op.drop_index("ix_documents_expires_at", table_name="documents")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE documents SET ({_AUTOVACUUM})")
    op.drop_index("ix_documents_to_purge", table_name="documents")
    op.create_index(
        "ix_documents_to_purge",
        "documents",
        ["expires_at", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE documents RESET "
            "(autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor)"
        )
    op.create_index("ix_documents_expires_at", "documents", ["expires_at"])
    op.drop_index("ix_documents_to_purge", table_name="documents")
    op.create_index(
        "ix_documents_to_purge",
        "documents",
        ["expires_at"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
