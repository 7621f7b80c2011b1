"""Bounce handling: a per-installation secret for signed bounce addresses, and member bounce counts.

Revision ID: 0004
Revises: 0003
"""

import secrets

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "relay_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(state, [{"key": "verp_secret", "value": secrets.token_hex(32)}])
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("hard_bounces", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("undeliverable_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("undeliverable_at")
        batch.drop_column("hard_bounces")
    op.drop_table("relay_state")
