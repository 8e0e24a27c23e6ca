"""evidence recorded_at, for the sweep that makes missing proofs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00

"""
import warnings

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # On SQLite the batch copy reflects the documents table (a foreign key points there) and
    # warns that it skips its expression index; documents is not rebuilt, so nothing is lost.
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'Skipped unsupported reflection', sa.exc.SAWarning)
        _add_recorded_at()


def _add_recorded_at():
    with op.batch_alter_table('evidences', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'recorded_at',
                ebox.db_types.UTCDateTime(),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch_op.create_index(batch_op.f('ix_evidences_recorded_at'), ['recorded_at'], unique=False)


def downgrade():
    with op.batch_alter_table('evidences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidences_recorded_at'))
        batch_op.drop_column('recorded_at')
