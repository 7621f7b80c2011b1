"""Whether a pair's members may be offered, and given, each other's real name and address at its end: the
one decision behind every path of the contact exchange (the ending-soon notice and the farewell of a sweep,
relay/nudges/rules/; the farewell of `pair close` and `program end`, relay/endings.py; the answers to
share@, relay/inbound/program/exchange.py).

Only where the program allows it (`contact_exchange: true`), and never for a pair on which a concern was
ever raised (mail to concern@, or to help@ with a subject starting "concern", from either member:
relay/inbound/program/help.py). The concern is read from the record (its `concern` and `pair.paused`
events), not from the pair's status: a pause lasts only until `pair resume`, and a sweep marks a paused
pair "ended" when its end date passes; the concern stays.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.config import ProgramConfig
from relay.store.pairs import Pair
from relay.store.schema import PAUSED, events

CONCERN_EVENTS = ("concern", "pair.paused")  # a concern raised on the pair (help.py records both)


def allowed(program: ProgramConfig, pair: Pair, *, concern: bool) -> bool:
    """The exchange may be offered and carried out for `pair` (`concern`: one was ever raised on it)."""
    return program.contact_exchange and not concern and pair.status != PAUSED


async def concerned(connection: AsyncConnection, pair_ids: Iterable[int]) -> set[int]:
    """The pairs among `pair_ids` on which a concern was ever raised (ix_events_pair_kind)."""
    ids = sorted(set(pair_ids))
    if not ids:
        return set()
    query = (select(events.c.pair_id).distinct()
             .where(events.c.pair_id.in_(ids), events.c.kind.in_(CONCERN_EVENTS)))
    return {row.pair_id for row in (await connection.execute(query)).all()}


async def exchange_allowed(connection: AsyncConnection, program: ProgramConfig, pair: Pair) -> bool:
    """`allowed`, with the record read for a concern."""
    if not program.contact_exchange:
        return False
    return allowed(program, pair, concern=pair.id in await concerned(connection, [pair.id]))
