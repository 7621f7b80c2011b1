"""Installation state kept in the store (relay_state): values created once by a migration."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.store.schema import relay_state


async def read_state(engine: AsyncEngine, key: str) -> str:
    async with engine.connect() as connection:
        value = (await connection.execute(select(relay_state.c.value).where(relay_state.c.key == key))).scalar()
    if value is None:
        raise LookupError(f"the store has no {key!r}; were its migrations applied?")
    return str(value)
