"""the audit chain in partitions, anchored together

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 07:00:00

The single chain's events become the first events of chain 0, numbered in the order of their
ids and sealed as they were (chain 0's legacy_events says how many); the other chains start
empty. Numbering rewrites each existing row once.

Downgrading puts every event back into one chain in the order of their ids. The events written
since this revision are sealed again by the single chain's rule, so the downgrade first checks
them and refuses to go on if any chain is broken: re-sealing would hide it.
"""

import hashlib
import json

from alembic import op
import sqlalchemy as sa

import ebox.db_types


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHAINS = 16
GENESIS_HASH = "0" * 64

# The rows as this revision knows them, whatever the models say later.
events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("occurred_at", ebox.db_types.UTCDateTime),
    sa.column("actor_type", sa.String),
    sa.column("actor_id", sa.String),
    sa.column("action", sa.String),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("details", sa.JSON),
    sa.column("chain", sa.SmallInteger),
    sa.column("seq", sa.BigInteger),
    sa.column("previous_hash", sa.String),
    sa.column("hash", sa.String),
)
chains = sa.table(
    "audit_chains",
    sa.column("id", sa.SmallInteger),
    sa.column("head_seq", sa.BigInteger),
    sa.column("head_hash", sa.String),
    sa.column("legacy_events", sa.BigInteger),
)


def upgrade():
    op.create_table(
        "audit_chains",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("legacy_events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chains")),
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", ebox.db_types.UTCDateTime(), nullable=False),
        sa.Column("heads", sa.JSON(), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_anchors_hash")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE audit_events SET chain = 0, seq = numbered.n "
        "FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_events) AS numbered "
        "WHERE audit_events.id = numbered.id"
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("chain", existing_type=sa.SmallInteger(), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("uq_audit_events_chain_seq", ["chain", "seq"], unique=True)
    _open_chains()


def _open_chains():
    """Chain 0 continues the single chain; the others start empty."""
    connection = op.get_bind()
    last = connection.execute(
        sa.select(events.c.seq, events.c.hash).order_by(events.c.seq.desc()).limit(1)
    ).first()
    legacy = last.seq if last else 0
    rows = [
        {
            "id": number,
            "head_seq": legacy if number == 0 else 0,
            "head_hash": last.hash if number == 0 and last else GENESIS_HASH,
            "legacy_events": legacy if number == 0 else 0,
        }
        for number in range(CHAINS)
    ]
    connection.execute(chains.insert(), rows)


def downgrade():
    _refuse_a_broken_log()
    _rechain_in_id_order()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("uq_audit_events_chain_seq")
        batch_op.drop_column("seq")
        batch_op.drop_column("chain")
    op.drop_table("audit_anchors")
    op.drop_table("audit_chains")


def _refuse_a_broken_log():
    connection = op.get_bind()
    for chain in connection.execute(sa.select(chains)).all():
        previous = GENESIS_HASH
        rows = connection.execute(
            sa.select(events).where(events.c.chain == chain.id).order_by(events.c.seq)
        )
        for expected_seq, row in enumerate(rows, start=1):
            is_legacy = row.seq <= chain.legacy_events
            if (
                row.seq != expected_seq
                or row.previous_hash != previous
                or _hash(row, with_place=not is_legacy) != row.hash
            ):
                raise RuntimeError(
                    f"audit event {row.id} does not verify: downgrading would seal it again "
                    "and hide that. Run `flask --app app ebox audit verify`; not downgraded."
                )
            previous = row.hash


def _rechain_in_id_order():
    """Link every event to the one before it by id, the single chain's rule, from the first
    event that is not already so linked."""
    connection = op.get_bind()
    previous = GENESIS_HASH
    for row in connection.execute(sa.select(events).order_by(events.c.id)).all():
        sealed = _hash(row, with_place=False, previous_hash=previous)
        if (row.previous_hash, row.hash) != (previous, sealed):
            connection.execute(
                events.update()
                .where(events.c.id == row.id)
                .values(previous_hash=previous, hash=sealed)
            )
        previous = sealed


def _hash(row, *, with_place, previous_hash=None):
    """The hash ebox.audit.hashing computes (event_hash, or legacy_event_hash without place)."""
    fields = {
        "occurred_at": row.occurred_at.isoformat(timespec="microseconds"),
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "action": row.action,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "details": row.details,
        "previous_hash": row.previous_hash if previous_hash is None else previous_hash,
    }
    if with_place:
        fields["chain"] = row.chain
        fields["seq"] = row.seq
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
