"""the browser behind each web session, so that a citizen can tell their sessions apart

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable ADD COLUMNs: no table rebuild on SQLite. Sessions from before have no browser.
    op.add_column("web_sessions", sa.Column("user_agent", sa.String(length=300), nullable=True))
    op.add_column("web_sessions", sa.Column("ip_address", sa.String(length=45), nullable=True))


def downgrade():
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("ip_address")
        batch_op.drop_column("user_agent")
