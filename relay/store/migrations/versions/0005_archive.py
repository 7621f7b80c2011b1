"""The archive's hash chain: one entry per archived row, each holding the hash of the entry before it.

Rows archived before this migration are chained once, in the order they were written (messages and
outbound copies by time, events by id), so `archive verify` covers them too.

Revision ID: 0005_archive
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0005_archive"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_chain",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("pair_id", sa.Integer),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_archive_chain_ref", "archive_chain", ["kind", "ref"])
    from relay.archive.chain import chain_existing_rows

    chain_existing_rows(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_archive_chain_ref", "archive_chain")
    op.drop_table("archive_chain")
