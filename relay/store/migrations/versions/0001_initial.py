"""Initial schema: pairs, members, messages, outbound queue, thread ids, events.

Revision ID: 0001
Revises:
"""

from alembic import op

from relay.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = ["pairs", "members", "messages", "outbound", "thread_ids", "events"]


def upgrade() -> None:
    bind = op.get_bind()
    # The first revision creates the tables as defined at this revision; later revisions use op.* calls.
    metadata.create_all(bind, tables=[metadata.tables[name] for name in _TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in reversed(_TABLES)])
