"""A held item keeps the subject staff mail may quote: the anonymised copy's subject with what is left of
addresses, IP addresses and phone numbers hidden (relay.hiding.staff_subject). Staff mail quoted the subject
as the participant typed it, real name, address and phone number included. Rows held before this revision
have none: their mail quotes no subject.

Revision ID: 0021_held_staff_subject
Revises: 0020_person_lookups
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_held_staff_subject"
down_revision = "0020_person_lookups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("held", sa.Column("staff_subject", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("held") as batch:
        batch.drop_column("staff_subject")
