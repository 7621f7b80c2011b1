"""The report reads every message of a program by pair and time (its weekly counts, the mentors' reply
times, the groups' figures): the pair-and-time index now also carries the id, the sender, the recipient (in
a group) and the decision, so those reads come from the index alone, never from the table, whose rows hold
the (compressed) raw message. The index on the pair alone is dropped: the wider index starts with the pair
and serves what it served.

Revision ID: 0016_report_cover
Revises: 0015_queue_pages
"""

from alembic import op

revision = "0016_report_cover"
down_revision = "0015_queue_pages"
branch_labels = None
depends_on = None

COVER = ["pair_id", "received_at", "id", "sender_id", "recipient_id", "decision"]


def upgrade() -> None:
    op.drop_index("ix_messages_pair_time", "messages")
    op.create_index("ix_messages_pair_time", "messages", COVER)
    op.drop_index("ix_messages_pair_id", "messages")


def downgrade() -> None:
    op.create_index("ix_messages_pair_id", "messages", ["pair_id"])
    op.drop_index("ix_messages_pair_time", "messages")
    op.create_index("ix_messages_pair_time", "messages", ["pair_id", "received_at"])
