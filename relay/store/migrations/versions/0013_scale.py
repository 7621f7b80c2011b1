"""Scale: message bytes stored compressed.

messages.raw and outbound.raw are now written through relay.store.rawbytes (zlib, tagged by a leading
NUL byte). Rows written before keep their bytes as they are and read back unchanged, except a value that
itself starts with a NUL byte, which would read as a tag: those few are escaped here.

Revision ID: 0013_scale
Revises: 0012_safeguarding
"""

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0013_scale"
down_revision = "0012_safeguarding"
branch_labels = None
depends_on = None

ESCAPED = b"\x00p"  # relay.store.rawbytes.ESCAPED (copied: a migration must not change when that module does)


def _escape_leading_nul(table_name: str) -> None:
    table = sa.table(table_name, sa.column("id", sa.String), sa.column("raw", sa.LargeBinary))
    connection = op.get_bind()
    starts_nul = sa.func.substr(table.c.raw, 1, 1) == sa.literal(b"\x00", sa.LargeBinary)
    for row_id, raw in connection.execute(sa.select(table.c.id, table.c.raw).where(starts_nul)).all():
        connection.execute(table.update().where(table.c.id == row_id).values(raw=ESCAPED + bytes(raw)))


def upgrade() -> None:
    _escape_leading_nul("messages")
    _escape_leading_nul("outbound")


def downgrade() -> None:
    # Compressed rows cannot be read by the code before this revision: decompress them back.
    connection = op.get_bind()
    for table_name in ("messages", "outbound"):
        table = sa.table(table_name, sa.column("id", sa.String), sa.column("raw", sa.LargeBinary))
        tagged = sa.func.substr(table.c.raw, 1, 1) == sa.literal(b"\x00", sa.LargeBinary)
        for row_id, raw in connection.execute(sa.select(table.c.id, table.c.raw).where(tagged)).all():
            value = bytes(raw)
            plain = zlib.decompress(value[2:]) if value[:2] == b"\x00z" else value[2:]
            connection.execute(table.update().where(table.c.id == row_id).values(raw=plain))
