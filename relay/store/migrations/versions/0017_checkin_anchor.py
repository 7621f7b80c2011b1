"""A check-in's key records the silence it is about (`anchor_at`: the pair's last message, or its start),
indexed with the pair and the kind, so that a sweep's query of due pairs can leave out a pair whose current
silence already has its check-ins (relay/nudges/due.py) instead of planning it again every hour. Keys
claimed before this revision have none: their pairs are looked at as before until their next silence.

Revision ID: 0017_checkin_anchor
Revises: 0016_report_cover
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0017_checkin_anchor"
down_revision = "0016_report_cover"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notice_keys", sa.Column("anchor_at", UTCDateTime))
    op.create_index("ix_notice_keys_pair_kind_anchor", "notice_keys", ["pair_id", "kind", "anchor_at"])


def downgrade() -> None:
    op.drop_index("ix_notice_keys_pair_kind_anchor", "notice_keys")
    with op.batch_alter_table("notice_keys") as batch:
        batch.drop_column("anchor_at")
