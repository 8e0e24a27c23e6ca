"""how each web session was authenticated, for registered mail's evidence of handover

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs (constant defaults, or nullable): no table rebuild on SQLite.
    op.add_column(
        "web_sessions",
        sa.Column("identity_provider", sa.String(length=500), nullable=False, server_default=""),
    )
    op.add_column(
        "web_sessions",
        sa.Column("authn_context", sa.String(length=500), nullable=False, server_default=""),
    )
    op.add_column(
        "web_sessions", sa.Column("authenticated_at", ebox.db_types.UTCDateTime(), nullable=True)
    )
    op.add_column(
        "web_sessions",
        sa.Column("assertion_id", sa.String(length=256), nullable=False, server_default=""),
    )


def downgrade():
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("assertion_id")
        batch_op.drop_column("authenticated_at")
        batch_op.drop_column("authn_context")
        batch_op.drop_column("identity_provider")
