"""Communities and digests: a member's own digest choice (each | daily | weekly; empty: the program's
default) and, for a community's member rows, when that person stopped being enrolled in the program
(relay/communities.py keeps community members in step with enrolment; a row is kept for the record).
Held-back copies for a digest are outbound rows in state `digest` (no column needed).

Revision ID: 0011_digests
Revises: 0010_conversations
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0011_digests"
down_revision = "0010_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("digest", sa.String(8), nullable=True))
        batch.add_column(sa.Column("left_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("left_at")
        batch.drop_column("digest")
