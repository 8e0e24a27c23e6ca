"""api_idempotency_keys: the Idempotency-Key of each REST publication, kept for a day

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-09 10:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_idempotency_keys",
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["senders.id"], name=op.f("fk_api_idempotency_keys_sender_id_senders")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_api_idempotency_keys_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sender_id", "key", name=op.f("pk_api_idempotency_keys")),
    )
    # Not in batch mode: on SQLite that would reflect the documents table (see 0016).
    op.create_index(
        "ix_api_idempotency_keys_created_at", "api_idempotency_keys", ["created_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_api_idempotency_keys_created_at", table_name="api_idempotency_keys")
    op.drop_table("api_idempotency_keys")
