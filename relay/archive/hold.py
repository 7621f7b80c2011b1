"""Legal hold: a conversation (a pair, a group or a community) under hold is never purged, and no member of
it can be erased (`person erase`). The hold's state is its events: the latest of "archive.hold" and
"archive.release_hold" for the conversation (the event's pair_id names it, as everywhere) says whether it
stands. A hold is placed, lifted and read by a purge or an erasure under the store's writers' lock
(relay/store/database.py), so neither misses one placed while it runs."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.store import events
from relay.store.conversations import Conversation, get_conversation
from relay.store.database import transaction
from relay.store.schema import events as events_table

HOLD = "archive.hold"
RELEASE = "archive.release_hold"


class HoldError(Exception):
    """The hold cannot be placed or released (no such conversation, no hold standing); worded for the admin."""


def what(conversation: Conversation) -> str:
    """How messages name a conversation: "pair 3", "group 4", "community 5"."""
    return f"{conversation.kind} {conversation.id}"


async def held_pairs(connection: AsyncConnection, pair_ids: list[int] | None = None) -> dict[int, str]:
    """Conversations (pairs, groups, communities) under legal hold now, with the reason given when the hold
    was placed."""
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


async def _conversation(connection: AsyncConnection, conversation_id: int, kind: str | None) -> Conversation:
    """The conversation with this id; `kind` "group": it must be a group (`archive hold --group`); None: any
    conversation (`--pair` takes a group's or a community's id too, as `archive export --pair` does)."""
    found = await get_conversation(connection, conversation_id)
    if found is None or (kind is not None and found.kind != kind):
        raise HoldError(f"no {kind or 'pair'} with id {conversation_id}")
    return found


async def place(engine: AsyncEngine, now: datetime, pair_id: int, reason: str, actor: str, *,
                kind: str | None = None) -> tuple[Conversation, bool]:
    """Put the conversation under legal hold; the flag is False when a hold already stood (nothing recorded
    then)."""
    async with transaction(engine) as connection:
        conversation = await _conversation(connection, pair_id, kind)
        if pair_id in await held_pairs(connection, [pair_id]):
            return conversation, False
        await events.record(connection, HOLD, now, actor=actor, pair_id=pair_id, reason=reason)
        return conversation, True


async def release(engine: AsyncEngine, now: datetime, pair_id: int, actor: str, *,
                  kind: str | None = None) -> Conversation:
    async with transaction(engine) as connection:
        conversation = await _conversation(connection, pair_id, kind)
        if pair_id not in await held_pairs(connection, [pair_id]):
            raise HoldError(f"{what(conversation)} is not under legal hold")
        await events.record(connection, RELEASE, now, actor=actor, pair_id=pair_id)
        return conversation
