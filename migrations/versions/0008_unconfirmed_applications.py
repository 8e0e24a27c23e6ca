"""applications wait in their own table until the business contact confirms the address

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "unconfirmed_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("submitted_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", ebox.db_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unconfirmed_applications")),
        sa.UniqueConstraint("reference", name=op.f("uq_unconfirmed_applications_reference")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_unconfirmed_applications_token_hash")),
    )
    with op.batch_alter_table("unconfirmed_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unconfirmed_applications_expires_at"), ["expires_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("unconfirmed_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unconfirmed_applications_expires_at"))
    op.drop_table("unconfirmed_applications")
