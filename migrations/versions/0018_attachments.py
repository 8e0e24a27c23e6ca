"""attachments: the further files of a message after its main document, each stored encrypted
under its own key like a document's content

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09 09:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("content_key", sa.LargeBinary(), nullable=True),
        sa.Column("content_key_id", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_attachments_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("document_id", "position", name=op.f("uq_attachments_document_id")),
    )
    # Not in batch mode: on SQLite that would reflect the documents table (see 0016).
    op.create_index(
        "ix_attachments_content_key",
        "attachments",
        ["content_key_id", "id"],
        unique=False,
        postgresql_where=sa.text("content_key_id IS NOT NULL"),
        sqlite_where=sa.text("content_key_id IS NOT NULL"),
    )
    op.create_index("ix_attachments_storage_key", "attachments", ["storage_key"], unique=False)


def downgrade():
    op.drop_index("ix_attachments_storage_key", table_name="attachments")
    op.drop_index("ix_attachments_content_key", table_name="attachments")
    op.drop_table("attachments")
