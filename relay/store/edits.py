"""Moderators' edits of held messages (redact-and-release): each edit is a new record linked to the
original message, which the archive keeps exactly as received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.schema import message_edits


async def save_edit(connection: AsyncConnection, message_id: str, raw: bytes, moderator: str, now: datetime) -> int:
    result = await connection.execute(message_edits.insert().values(
        message_id=message_id, raw=raw, moderator=moderator, created_at=now))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


async def latest_edit(connection: AsyncConnection, message_id: str) -> bytes | None:
    """The newest edit's message, or None when nobody edited it."""
    query = (select(message_edits.c.raw).where(message_edits.c.message_id == message_id)
             .order_by(message_edits.c.id.desc()).limit(1))
    value = (await connection.execute(query)).scalar()
    return None if value is None else bytes(value)


async def latest_edit_id(connection: AsyncConnection, message_id: str) -> int | None:
    """The newest edit's id, or None when nobody edited the message."""
    query = (select(message_edits.c.id).where(message_edits.c.message_id == message_id)
             .order_by(message_edits.c.id.desc()).limit(1))
    value = (await connection.execute(query)).scalar()
    return None if value is None else int(value)
