"""reminders: a document still unread EBOX_REMINDER_DAYS after it arrived is named once more in
the daily alert, unless the citizen or the document's message type turned reminders off

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 09:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    # Server defaults: existing rows get the value at once, without a rewrite of the table on
    # PostgreSQL 11 and later (a constant default is kept in the catalogue).
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alerted_reminder_until", ebox.db_types.UTCDateTime()))
        batch_op.add_column(
            sa.Column("wants_reminders", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    # Reminders start with the documents that arrive after the citizen's last alert: a release
    # does not remind three million citizens at once of everything they left unread before.
    op.execute("UPDATE citizens SET alerted_reminder_until = alerted_news_until")
    with op.batch_alter_table("message_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sends_reminders", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminder_after", ebox.db_types.UTCDateTime()))
        batch_op.add_column(sa.Column("reminder_until", ebox.db_types.UTCDateTime()))
        batch_op.add_column(
            sa.Column("reminder_count", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_column("reminder_count")
        batch_op.drop_column("reminder_until")
        batch_op.drop_column("reminder_after")
    with op.batch_alter_table("message_types", schema=None) as batch_op:
        batch_op.drop_column("sends_reminders")
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.drop_column("wants_reminders")
        batch_op.drop_column("alerted_reminder_until")
