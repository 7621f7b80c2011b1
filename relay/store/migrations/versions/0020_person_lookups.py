"""A person's rows are found through indexes: their enrolments by address (members.email_key; the unique
index on (pair, address) cannot be searched by address alone), and the mail sent to them by its recipient
compared without regard to case (lower(outbound.rcpt)). `person erase` read the whole members table and the
whole queue inside its write transaction: 33 ms and 0.5 s at a million messages, with every accept waiting.

Revision ID: 0020_person_lookups
Revises: 0019_outbound_pair
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_person_lookups"
down_revision = "0019_outbound_pair"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_members_email_key", "members", ["email_key"])
    op.create_index("ix_outbound_rcpt_key", "outbound", [sa.text("lower(rcpt)")])


def downgrade() -> None:
    op.drop_index("ix_outbound_rcpt_key", "outbound")
    op.drop_index("ix_members_email_key", "members")
