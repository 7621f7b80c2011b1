"""Initial schema: pairs, members, messages, outbound queue, thread ids, events.

Revision ID: 0001
Revises:

Written out in full (not derived from schema.py) so that later changes to schema.py, which come with
their own revisions, never change what this revision creates.
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pairs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.String(64), nullable=False, index=True),
        sa.Column("policy", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("end_date", sa.String(10)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("pairs.id"), nullable=False),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("handle_key", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False, unique=True),
        sa.Column("timezone", sa.String(64)),
        sa.UniqueConstraint("program_id", "handle_key", name="uq_member_handle"),
        sa.UniqueConstraint("pair_id", "role", name="uq_member_role"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("pairs.id"), nullable=False, index=True),
        sa.Column("sender_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("recipient_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("remote_addr", sa.String(64)),
        sa.Column("original_message_id", sa.String(998)),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_messages_retry", "messages", ["sender_id", "original_message_id"])
    op.create_table(
        "outbound",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id"), nullable=False, index=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("pairs.id")),
        sa.Column("rcpt", sa.String(320), nullable=False),
        sa.Column("mail_from", sa.String(320), nullable=False),
        sa.Column("out_message_id", sa.String(998), nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
    )
    op.create_index("ix_outbound_due", "outbound", ["state", "next_attempt_at"])
    op.create_table(
        "thread_ids",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair_id", sa.Integer, sa.ForeignKey("pairs.id"), nullable=False),
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("sender_role", sa.String(8), nullable=False),
        sa.Column("original_id", sa.String(998)),
        sa.Column("generated_id", sa.String(998), nullable=False),
    )
    op.create_index("ix_thread_original", "thread_ids", ["pair_id", "original_id"])
    op.create_index("ix_thread_generated", "thread_ids", ["pair_id", "generated_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("pair_id", sa.Integer, index=True),
        sa.Column("message_id", sa.String(32), index=True),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("events", "thread_ids", "outbound", "messages", "members", "pairs"):
        op.drop_table(table)
