"""Legal hold: a pair under hold is never purged. The hold's state is its events: the latest of
"archive.hold" and "archive.release_hold" for the pair says whether it stands. A hold is placed, lifted and
read by a purge under the store's writers' lock (relay/store/database.py), so a purge never misses one placed
while it runs."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.store import events
from relay.store.database import transaction
from relay.store.pairs import get_pair
from relay.store.schema import events as events_table

HOLD = "archive.hold"
RELEASE = "archive.release_hold"


class HoldError(Exception):
    """The hold cannot be placed or released (no such pair, no hold standing); worded for the admin."""


async def held_pairs(connection: AsyncConnection, pair_ids: list[int] | None = None) -> dict[int, str]:
    """Pairs under legal hold now, with the reason given when the hold was placed."""
    query = (select(events_table.c.pair_id, events_table.c.kind, events_table.c.detail)
             .where(events_table.c.kind.in_([HOLD, RELEASE])).order_by(events_table.c.id))
    if pair_ids is not None:
        query = query.where(events_table.c.pair_id.in_(pair_ids))
    standing: dict[int, str] = {}
    for row in (await connection.execute(query)).all():
        if row.kind == HOLD:
            standing[row.pair_id] = row.detail
        else:
            standing.pop(row.pair_id, None)
    return {pair_id: json.loads(detail).get("reason", "") for pair_id, detail in standing.items()}


async def place(engine: AsyncEngine, now: datetime, pair_id: int, reason: str, actor: str) -> bool:
    """Put the pair under legal hold; False when a hold already stands (nothing recorded then)."""
    async with transaction(engine) as connection:
        if await get_pair(connection, pair_id) is None:
            raise HoldError(f"no pair with id {pair_id}")
        if pair_id in await held_pairs(connection, [pair_id]):
            return False
        await events.record(connection, HOLD, now, actor=actor, pair_id=pair_id, reason=reason)
        return True


async def release(engine: AsyncEngine, now: datetime, pair_id: int, actor: str) -> None:
    async with transaction(engine) as connection:
        if await get_pair(connection, pair_id) is None:
            raise HoldError(f"no pair with id {pair_id}")
        if pair_id not in await held_pairs(connection, [pair_id]):
            raise HoldError(f"pair {pair_id} is not under legal hold")
        await events.record(connection, RELEASE, now, actor=actor, pair_id=pair_id)
