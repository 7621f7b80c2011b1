"""Hold queue, and outbound entries that are notices rather than relayed messages.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held",
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id"), primary_key=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("pairs.id"), nullable=False, index=True),
        sa.Column("program_id", sa.String(64), nullable=False, index=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("held_at", UTCDateTime, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("release_requires", sa.Integer, nullable=False),
        sa.Column("approvals", sa.Text, nullable=False),
        sa.Column("decided_at", UTCDateTime),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("reject_reason", sa.Text),
        sa.Column("notified_at", UTCDateTime),
        sa.Column("reminded_at", UTCDateTime),
        sa.Column("escalated_at", UTCDateTime),
    )
    op.create_index("ix_held_state", "held", ["state", "held_at"])
    with op.batch_alter_table("outbound") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="relay"))
        batch.alter_column("message_id", existing_type=sa.String(32), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("outbound") as batch:
        batch.drop_column("kind")
        batch.alter_column("message_id", existing_type=sa.String(32), nullable=False)
    op.drop_index("ix_held_state", "held")
    op.drop_table("held")
