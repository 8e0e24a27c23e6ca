"""sender events and webhook subscriptions: what happened to senders' messages, for the REST
API's pull and for webhooks

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09 09:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sender_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("xid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_sender_events_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["senders.id"],
            name=op.f("fk_sender_events_sender_id_senders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_events")),
        sa.UniqueConstraint("public_id", name=op.f("uq_sender_events_public_id")),
    )
    op.create_index(
        "ix_sender_events_sender_position", "sender_events", ["sender_id", "xid", "id"]
    )
    op.create_index("ix_sender_events_occurred_at", "sender_events", ["occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Each row keeps the id of the transaction that wrote it (ebox.events.queries).
        op.execute(
            "ALTER TABLE sender_events ALTER COLUMN xid "
            "SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("secret_wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("secret_key_id", sa.String(length=50), nullable=False),
        sa.Column("created_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", ebox.db_types.UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", ebox.db_types.UTCDateTime(), nullable=True),
        sa.Column("disabled_at", ebox.db_types.UTCDateTime(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=400), nullable=True),
        sa.Column("last_delivery_at", ebox.db_types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("position_xid", sa.BigInteger(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["senders.id"],
            name=op.f("fk_webhook_subscriptions_sender_id_senders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        op.f("ix_webhook_subscriptions_sender_id"), "webhook_subscriptions", ["sender_id"]
    )


def downgrade():
    op.drop_index(op.f("ix_webhook_subscriptions_sender_id"), table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_sender_events_occurred_at", table_name="sender_events")
    op.drop_index("ix_sender_events_sender_position", table_name="sender_events")
    op.drop_table("sender_events")
