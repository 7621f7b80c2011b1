"""A pair's events are indexed with their kind: the console's pair health counts each listed pair's nudges,
and through the index on the pair alone it read every event of those pairs (a busy pair has hundreds:
25 ms of a 45 ms page at 100k pairs / 1M messages). The wider index starts with the pair and serves what the
index on the pair alone served, which is dropped.

Revision ID: 0018_events_pair_kind
Revises: 0017_checkin_anchor
"""

from alembic import op

revision = "0018_events_pair_kind"
down_revision = "0017_checkin_anchor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_pair_kind", "events", ["pair_id", "kind"])
    op.drop_index("ix_events_pair_id", "events")


def downgrade() -> None:
    op.create_index("ix_events_pair_id", "events", ["pair_id"])
    op.drop_index("ix_events_pair_kind", "events")
