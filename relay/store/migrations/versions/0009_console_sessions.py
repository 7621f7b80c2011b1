"""Console sessions kept in the store (revocable at logout, on a password change, by an admin) and the
browsers a moderator logged in from before (trusted devices: the right password from one still works
while their account is throttled).

Revision ID: 0009_console_sessions
Revises: 0008_nicknames
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0009_console_sessions"
down_revision = "0008_nicknames"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("moderator_id", sa.Integer, sa.ForeignKey("moderators.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.Column("revoked_by", sa.String(64)),
        sa.Column("address", sa.String(64)),
        sa.Column("user_agent", sa.String(200)),
    )
    op.create_index("ix_console_sessions_moderator_id", "console_sessions", ["moderator_id"])
    op.create_table(
        "console_devices",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("moderator_id", sa.Integer, sa.ForeignKey("moderators.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.create_index("ix_console_devices_moderator_id", "console_devices", ["moderator_id"])


def downgrade() -> None:
    op.drop_index("ix_console_devices_moderator_id", "console_devices")
    op.drop_table("console_devices")
    op.drop_index("ix_console_sessions_moderator_id", "console_sessions")
    op.drop_table("console_sessions")
