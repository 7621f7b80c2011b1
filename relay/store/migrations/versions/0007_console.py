"""Review console: moderator accounts, login throttling, moderators' edits of held mail.

Revision ID: 0007_console
Revises: 0006_nudges
"""

import secrets

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0007_console"
down_revision = "0006_nudges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderators",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("programs", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "console_logins",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("locked_until", UTCDateTime),
    )
    op.create_table(
        "message_edits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("moderator", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_message_edits_message_id", "message_edits", ["message_id"])
    # Signs console sessions unless relay.yaml names a secret of its own (console.secret_key).
    state = sa.table("relay_state", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.bulk_insert(state, [{"key": "console_secret", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.execute("DELETE FROM relay_state WHERE key = 'console_secret'")
    op.drop_index("ix_message_edits_message_id", "message_edits")
    op.drop_table("message_edits")
    op.drop_table("console_logins")
    op.drop_table("moderators")
