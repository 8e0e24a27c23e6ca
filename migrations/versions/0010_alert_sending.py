"""the daily alert's sending: the (day, status, citizen_id) index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLE = "alert_deliveries"
# A sending job reads one range of citizens' deliveries of the day still to send; with the
# citizen in the key it reads only those, not all of the day's. Its first two columns serve
# what the (day, status) index served, which goes.
NEW = ("ix_alert_deliveries_day_status_citizen", ["day", "status", "citizen_id"])
OLD = ("ix_alert_deliveries_day_status", ["day", "status"])


def upgrade():
    _replace(OLD, NEW)


def downgrade():
    _replace(NEW, OLD)


def _replace(old, new):
    # On PostgreSQL the index is built CONCURRENTLY, outside a transaction, so that planning
    # and sending go on meanwhile. A build stopped halfway leaves an invalid index behind: it
    # is dropped first, so the migration can run again.
    with op.get_context().autocommit_block():
        _drop(new[0])
        op.create_index(new[0], TABLE, new[1], postgresql_concurrently=True)
        _drop(old[0])


def _drop(name):
    op.drop_index(name, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
