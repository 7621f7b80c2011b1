"""Several addresses per member: further addresses a member may write from (`pair address add`); mail
from any of them is taken as theirs, delivery still goes to members.email (the primary), and every
one of them is scrubbed from what their partner receives.

Revision ID: 0014_member_addresses
Revises: 0013_scale
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0014_member_addresses"
down_revision = "0013_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_addresses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("member_id", "email_key", name="uq_member_address"),
    )
    op.create_index("ix_member_addresses_key", "member_addresses", ["email_key"])
    op.create_index("ix_member_addresses_member", "member_addresses", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_member_addresses_member", "member_addresses")
    op.drop_index("ix_member_addresses_key", "member_addresses")
    op.drop_table("member_addresses")
