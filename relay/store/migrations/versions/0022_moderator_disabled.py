"""A console account can be disabled (`moderator disable --username U`) and enabled again: while
moderators.disabled_at is set, the account cannot log in, its sessions and API token are refused, and the
password and token it had are kept only as history (the disable also ends its sessions and clears its token).

Revision ID: 0022_moderator_disabled
Revises: 0021_held_staff_subject
"""

import sqlalchemy as sa
from alembic import op

from relay.store.schema import UTCDateTime

revision = "0022_moderator_disabled"
down_revision = "0021_held_staff_subject"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("moderators", sa.Column("disabled_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("moderators") as batch:
        batch.drop_column("disabled_at")
