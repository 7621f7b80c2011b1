"""Events: every decision the relay or a person makes, with who, what and why (invariant 5).

Events are written only through `record` or `write` (rows from `event_values`): both chain each event
into the archive's hash chain in the same transaction (relay.archive.chain).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.archive import chain
from relay.store.database import take_write_lock
from relay.store.schema import events


def event_values(
    kind: str,
    at: datetime,
    *,
    actor: str = "relay",
    pair_id: int | None = None,
    message_id: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "at": at,
        "actor": actor,
        "pair_id": pair_id,
        "message_id": message_id,
        "detail": _detail_json(detail),
    }


def _detail_json(detail: dict[str, Any]) -> str:
    """The detail as JSON whose every string is valid Unicode: bytes that were not UTF-8 (an address sent
    raw over SMTP, read with surrogate escapes) are kept as visible escapes ("a@\\udcff.example"), so that
    no page or export that shows the event fails on them."""
    text = json.dumps(detail, sort_keys=True, default=str)
    return text if "\\ud" not in text else json.dumps(_printable(json.loads(text)), sort_keys=True)


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    return value


async def record(connection: AsyncConnection, kind: str, at: datetime, **fields: Any) -> None:
    await write(connection, [event_values(kind, at, **fields)])


async def write(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert event rows (from `event_values`) and chain them, in the caller's transaction."""
    await chain.append(connection, await insert_rows(connection, rows))


async def insert_rows(connection: AsyncConnection, rows: list[dict[str, Any]]) -> list[chain.Link]:
    """Insert event rows in one statement and return their chain links, which the caller MUST append
    (`chain.append`) in the same transaction; for writers that chain several tables at once."""
    if not rows:
        return []
    # RETURNING the stored rows themselves: the links are built from what the store holds, and no
    # row-by-row ordering of the returned ids is needed (which would cost one statement per row).
    await take_write_lock(connection)  # the ids in commit order (relay/archive/chain.py)
    query = events.insert().returning(events.c.id, *(events.c[name] for name in chain.EVENT_FIELDS))
    stored = sorted((await connection.execute(query, rows)).all(), key=lambda row: row.id)
    return [chain.event_link(row.id, row._mapping) for row in stored]


async def happened_since(connection: AsyncConnection, kind: str, pair_id: int, since: datetime) -> bool:
    query = select(events.c.id).where(events.c.kind == kind, events.c.pair_id == pair_id, events.c.at >= since)
    return (await connection.execute(query.limit(1))).first() is not None


async def iter_events(connection: AsyncConnection, *, kind: str | None = None, pair_id: int | None = None,
                      limit: int = 1000, chunk: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """`list_events`, streamed: the first `limit` events by id, read `chunk` at a time (keyset on id)."""
    after, left = 0, limit
    while left > 0:
        found = await list_events(connection, kind=kind, pair_id=pair_id, limit=min(chunk, left), after=after)
        for event in found:
            yield event
        if len(found) < min(chunk, left):
            return
        left -= len(found)
        after = found[-1]["id"]


async def list_events(
    connection: AsyncConnection,
    *,
    kind: str | None = None,
    pair_id: int | None = None,
    message_id: str | None = None,
    limit: int = 1000,
    after: int = 0,
) -> list[dict[str, Any]]:
    """Events by id (after the id `after`), at most `limit`."""
    query = select(events).where(events.c.id > after).order_by(events.c.id)
    if kind is not None:
        query = query.where(events.c.kind == kind)
    if pair_id is not None:
        query = query.where(events.c.pair_id == pair_id)
    if message_id is not None:
        query = query.where(events.c.message_id == message_id)
    rows = (await connection.execute(query.limit(limit))).mappings().all()
    return [{**row, "detail": json.loads(row["detail"])} for row in rows]
