"""the WS-Security replay guard's record in the database: a signed request accepted once stays
refused for as long as it could be replayed, whatever happens to Redis

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 09:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "wss_seen_requests",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_wss_seen_requests")),
    )
    with op.batch_alter_table("wss_seen_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wss_seen_requests_expires_at"), ["expires_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("wss_seen_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wss_seen_requests_expires_at"))
    op.drop_table("wss_seen_requests")
