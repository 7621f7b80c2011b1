"""The once-only record of scheduled mail: a deterministic key per nudge, check-in or notice.

`claim` inserts the key and reports whether this caller inserted it (`claim_many`: many keys at once;
`claim_every`: a key that may be claimed again once its last claim is a given time old; `claim_slot`: one of
N such keys, a rate limit of N per period);
a key already present (another sweep, another relay instance, a sweep before a restart) makes the
insert a no-op. It runs in the
transaction that queues the mail, so the mail and its key are committed together or not at all.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.conversations import email_key
from relay.store.schema import notice_keys


async def claim(connection: AsyncConnection, key: str, *, kind: str, pair_id: int | None, at: datetime,
                sent: bool = True, anchor_at: datetime | None = None) -> bool:
    """`anchor_at`: a check-in's silence (relay/store/schema.notice_keys)."""
    values = {"key": key, "kind": kind, "pair_id": pair_id, "at": at, "sent": int(sent), "anchor_at": anchor_at}
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(notice_keys).values(values).on_conflict_do_nothing(index_elements=["key"])
    result = await connection.execute(statement)
    return bool(result.rowcount)


async def claim_every(connection: AsyncConnection, key: str, *, kind: str, pair_id: int | None, at: datetime,
                      every: timedelta) -> bool:
    """`claim`, or, when the key is taken, take it again if its last claim is `every` old (it is moved to `at`
    with a conditional update, so that two sessions at once get one claim): a rate limit of one per `every`."""
    if await claim(connection, key, kind=kind, pair_id=pair_id, at=at):
        return True
    moved = await connection.execute(update(notice_keys).where(notice_keys.c.key == key, notice_keys.c.at <= at - every)
                                     .values(at=at))
    return bool(moved.rowcount)


async def claim_slot(connection: AsyncConnection, prefix: str, slots: int, *, kind: str, pair_id: int | None,
                     at: datetime, every: timedelta) -> int | None:
    """One of `slots` keys (`prefix`:0, :1 ...) by claim_every, the first free: a rate limit of `slots` per
    `every` that two sessions at once cannot exceed; the slot taken, or None when all were taken within `every`."""
    for slot in range(slots):
        if await claim_every(connection, f"{prefix}:{slot}", kind=kind, pair_id=pair_id, at=at, every=every):
            return slot
    return None


def address_digest(address: str) -> str:
    """An address as it goes into a key: hashed (a key outlives the events an erasure cleans), case-insensitive."""
    return hashlib.sha256(email_key(address).encode("utf-8")).hexdigest()[:24]


async def claim_many(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    """`claim` for many keys in one statement (rows: key, kind, pair_id, at, sent, anchor_at); returns the keys
    this caller inserted."""
    if not rows:
        return set()
    # One statement compiled once (SQLAlchemy's "insertmanyvalues" sends the rows in batches of one
    # INSERT ... RETURNING each): a .values(rows) statement would be compiled anew for every chunk.
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = (dialect.insert(notice_keys).on_conflict_do_nothing(index_elements=["key"])
                 .returning(notice_keys.c.key))
    return set((await connection.execute(statement, rows)).scalars())


async def claimed(connection: AsyncConnection, candidates: list[str]) -> set[str]:
    """Which of these keys are already taken."""
    if not candidates:
        return set()
    query = select(notice_keys.c.key).where(notice_keys.c.key.in_(candidates))
    return set((await connection.execute(query)).scalars())


def exchange_offered(pair_id: int) -> str:
    """The key claimed when the farewell of a pair closed by hand offers the contact exchange (relay/endings.py);
    share@ takes a closed pair's answers only then (relay/inbound/program/exchange.py)."""
    return f"contact_exchange.offered:{pair_id}"
