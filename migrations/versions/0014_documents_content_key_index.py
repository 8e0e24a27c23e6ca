"""an index of the documents by master key id: the start check finds the master keys still
needed with a few index seeks, and the key rotation pages through each key's documents

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    # On PostgreSQL built CONCURRENTLY: publication goes on while a large table is indexed.
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            _create_index(postgresql_concurrently=True)
    else:
        _create_index()


def _create_index(**options):
    op.create_index(
        "ix_documents_content_key",
        "documents",
        ["content_key_id", "id"],
        postgresql_where=sa.text("content_key_id IS NOT NULL"),
        sqlite_where=sa.text("content_key_id IS NOT NULL"),
        **options,
    )


def downgrade():
    op.drop_index("ix_documents_content_key", table_name="documents")
