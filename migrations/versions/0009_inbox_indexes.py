"""the inbox's indexes: pages, counts and title search that do not grow with the mailbox

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEY = ["recipient_national_number", "published_at", "id"]
# name, key columns, columns carried (PostgreSQL only), which documents (decision 0015)
BTREE_INDEXES = [
    (
        "ix_documents_inbox",
        KEY,
        ["expires_at", "title"],
        "deleted_at IS NULL AND hidden_at IS NULL",
    ),
    ("ix_documents_archive", KEY, ["expires_at"], "deleted_at IS NULL AND hidden_at IS NOT NULL"),
    (
        "ix_documents_unread",
        KEY,
        ["expires_at", "hidden_at"],
        "deleted_at IS NULL AND read_at IS NULL",
    ),
    (
        "ix_documents_by_sender",
        ["recipient_national_number", "sender_id", "published_at", "id"],
        ["expires_at", "hidden_at", "read_at"],
        "deleted_at IS NULL",
    ),
]
TITLE_SEARCH = "ix_documents_title_search"


def upgrade():
    is_postgresql = op.get_bind().dialect.name == "postgresql"
    if is_postgresql:
        # Both are trusted extensions: the database's owner may create them.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # On PostgreSQL the indexes are built CONCURRENTLY, outside a transaction, so that
    # publications go on meanwhile (hours on a national table). A build stopped halfway
    # leaves an invalid index behind: each is dropped first, so the migration can run again.
    with op.get_context().autocommit_block():
        for name, columns, included, where in BTREE_INDEXES:
            _drop(name)
            op.create_index(
                name,
                "documents",
                columns,
                postgresql_include=included,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
                postgresql_concurrently=True,
            )
        if is_postgresql:
            _drop(TITLE_SEARCH)
            op.create_index(
                TITLE_SEARCH,
                "documents",
                ["recipient_national_number", "title"],
                postgresql_using="gin",
                postgresql_ops={"title": "gin_trgm_ops"},
                postgresql_with={"fastupdate": "off"},
                postgresql_where=sa.text("deleted_at IS NULL"),
                postgresql_concurrently=True,
            )


def downgrade():
    is_postgresql = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        if is_postgresql:
            _drop(TITLE_SEARCH)
        for name, _columns, _included, _where in reversed(BTREE_INDEXES):
            _drop(name)
    if is_postgresql:
        # Only this migration uses them; an extension still in use elsewhere refuses to go.
        op.execute("DROP EXTENSION IF EXISTS btree_gin")
        op.execute("DROP EXTENSION IF EXISTS pg_trgm")


def _drop(name):
    op.drop_index(name, table_name="documents", if_exists=True, postgresql_concurrently=True)
