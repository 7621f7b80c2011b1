"""Nudges and notices of the relay's own schedule: their keys (sent once); members' away dates and
their consent to exchange addresses when the pair ends; a mentor's writing days.

Revision ID: 0006_nudges
Revises: 0005_archive
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0006_nudges"
down_revision = "0005_archive"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("pairs.id")),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("away_until", sa.String(10)))
        batch.add_column(sa.Column("contact_consent", sa.String(3)))
        batch.add_column(sa.Column("cadence", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("cadence")
        batch.drop_column("contact_consent")
        batch.drop_column("away_until")
    op.drop_table("notice_keys")
