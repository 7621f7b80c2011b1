"""Index messages by pair and time: the rate rule counts a pair's messages of the last 24 hours.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_pair_time", "messages", ["pair_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_pair_time", "messages")
