"""Safeguarding: a held message's severity (urgent ones sort first and reach the safeguarding lead), the
urgent follow-up's mark, who escalated it from the console, which approval came from the command line,
and automatic rejections recorded in the queue's history.

Revision ID: 0012_safeguarding
Revises: 0011_digests
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0012_safeguarding"
down_revision = "0011_digests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("held") as batch:
        batch.add_column(sa.Column("severity", sa.String(8), nullable=False, server_default="normal"))
        batch.add_column(sa.Column("automatic", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("urgent_followup_at", UTCDateTime))
        batch.add_column(sa.Column("escalated_by", sa.String(64)))
        batch.add_column(sa.Column("cli_approval", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("held") as batch:
        batch.drop_column("cli_approval")
        batch.drop_column("escalated_by")
        batch.drop_column("urgent_followup_at")
        batch.drop_column("automatic")
        batch.drop_column("severity")
