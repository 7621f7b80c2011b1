"""`queue list` reads a page at a time in its order (created_at, id), with or without a state: two indexes
serve those pages, so a page reads its rows and no more, however long the queue's history is.

Revision ID: 0015_queue_pages
Revises: 0014_member_addresses
"""

from alembic import op

revision = "0015_queue_pages"
down_revision = "0014_member_addresses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbound_created", "outbound", ["created_at", "id"])
    op.create_index("ix_outbound_state_created", "outbound", ["state", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbound_state_created", "outbound")
    op.drop_index("ix_outbound_created", "outbound")
