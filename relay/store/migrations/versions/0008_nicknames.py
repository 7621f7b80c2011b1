"""Members' known nicknames (JSON list), scrubbed like their real names.

Revision ID: 0008_nicknames
Revises: 0007_console
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_nicknames"
down_revision = "0007_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("nicknames", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("nicknames")
