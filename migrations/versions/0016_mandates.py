"""mandates: a citizen lets a trusted person read their eBox within limits (senders, registered
mail, an end date); accesses by that person are recorded with their id

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00

"""

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mandates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("holder_national_number", sa.String(length=11), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("is_every_sender", sa.Boolean(), nullable=False),
        sa.Column("may_open_registered", sa.Boolean(), nullable=False),
        sa.Column("ends_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("created_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("accepted_at", ebox.db_types.UTCDateTime(), nullable=True),
        sa.Column("ended_at", ebox.db_types.UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["citizens.id"], name=op.f("fk_mandates_holder_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["citizens.id"], name=op.f("fk_mandates_owner_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mandates")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_mandates_code_hash")),
    )
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.create_index("ix_mandates_owner_id", ["owner_id"], unique=False)
        batch_op.create_index("ix_mandates_holder_id", ["holder_id"], unique=False)
        batch_op.create_index(
            "ix_mandates_holder_national_number", ["holder_national_number"], unique=False
        )
    op.create_table(
        "mandate_senders",
        sa.Column("mandate_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mandate_id"], ["mandates.id"], name=op.f("fk_mandate_senders_mandate_id_mandates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["senders.id"], name=op.f("fk_mandate_senders_sender_id_senders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mandate_id", "sender_id", name=op.f("pk_mandate_senders")),
    )
    # Not in batch mode: on SQLite that would copy the table, reflecting the documents table it
    # refers to (whose expression index SQLAlchemy cannot reflect). SQLite adds a nullable column
    # with its reference in place, which Alembic does not write for it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE document_access_events ADD COLUMN representative_id INTEGER "
            "REFERENCES citizens (id) ON DELETE SET NULL"
        )
        return
    op.add_column(
        "document_access_events",
        sa.Column(
            "representative_id",
            sa.Integer(),
            sa.ForeignKey(
                "citizens.id",
                name=op.f("fk_document_access_events_representative_id_citizens"),
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
    )

def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(
            op.f("fk_document_access_events_representative_id_citizens"),
            "document_access_events",
            type_="foreignkey",
        )
    op.drop_column("document_access_events", "representative_id")
    op.drop_table("mandate_senders")
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.drop_index("ix_mandates_holder_national_number")
        batch_op.drop_index("ix_mandates_holder_id")
        batch_op.drop_index("ix_mandates_owner_id")
    op.drop_table("mandates")
