"""Conversations: a pair is a conversation of two, a group has more members (issue 16).

The table keeps its name `pairs` (and `pair_id` columns keep naming the conversation): pairs.kind tells
a pair from a group, pairs.name and pairs.alias are a group's name and the local part of its alias.
members loses "one member per role and conversation" and "one handle per program" (one person may
keep one handle in a pair and a group of the same program; relay/enrol.py checks that a handle
belongs to one person); a conversation holds a person and a handle once. members.language is the
member's language. messages.recipient_id is empty for a message to a whole group. thread_ids records
the sender and the recipient of each delivered copy, so threads are mapped per recipient.

Existing rows keep their meaning: every existing conversation is a pair; thread_ids rows get the
sender and recipient of their message. On SQLite the constraint changes rebuild the tables (Alembic
batch mode) with foreign keys off (relay/store/database.py); a foreign key check follows.

Revision ID: 0010_conversations
Revises: 0009_console_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_conversations"
down_revision = "0009_console_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="pair"))
        batch.add_column(sa.Column("name", sa.String(200)))
        batch.add_column(sa.Column("alias", sa.String(64)))
        batch.create_unique_constraint("uq_pairs_alias", ["alias"])
    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("uq_member_role", type_="unique")
        batch.drop_constraint("uq_member_handle", type_="unique")
        batch.add_column(sa.Column("language", sa.String(35)))
        batch.create_unique_constraint("uq_member_person", ["pair_id", "email_key"])
        batch.create_unique_constraint("uq_member_conversation_handle", ["pair_id", "handle_key"])
        batch.create_index("ix_members_program_handle", ["program_id", "handle_key"])
        batch.create_index("ix_members_pair", ["pair_id"])
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("recipient_id", existing_type=sa.Integer, nullable=True)
    with op.batch_alter_table("thread_ids") as batch:
        batch.add_column(sa.Column("sender_id", sa.Integer, sa.ForeignKey("members.id", name="fk_thread_sender")))
        batch.add_column(sa.Column("recipient_id", sa.Integer,
                                   sa.ForeignKey("members.id", name="fk_thread_recipient")))
    op.execute("UPDATE thread_ids SET sender_id = (SELECT sender_id FROM messages WHERE messages.id = "
               "thread_ids.message_id), recipient_id = (SELECT recipient_id FROM messages WHERE "
               "messages.id = thread_ids.message_id)")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration 0009 left rows whose references do not resolve: {broken[:5]}")


def downgrade() -> None:
    with op.batch_alter_table("thread_ids") as batch:
        batch.drop_column("recipient_id")
        batch.drop_column("sender_id")
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("recipient_id", existing_type=sa.Integer, nullable=False)
    with op.batch_alter_table("members") as batch:
        batch.drop_index("ix_members_pair")
        batch.drop_index("ix_members_program_handle")
        batch.drop_constraint("uq_member_conversation_handle", type_="unique")
        batch.drop_constraint("uq_member_person", type_="unique")
        batch.drop_column("language")
        batch.create_unique_constraint("uq_member_handle", ["program_id", "handle_key"])
        batch.create_unique_constraint("uq_member_role", ["pair_id", "role"])
    with op.batch_alter_table("pairs") as batch:
        batch.drop_constraint("uq_pairs_alias", type_="unique")
        batch.drop_column("alias")
        batch.drop_column("name")
        batch.drop_column("kind")
