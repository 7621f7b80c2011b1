"""The outbound queue: claiming due entries, and recording sent, deferred and failed attempts.

Claims are leases (claimed_by, claimed_until) so that several relay instances sharing one database
never send an entry twice at once, and an instance that dies leaves entries that others pick up when
the lease ends. A restart of the same instance clears its own stale claims at once.

A member's copy (kind `relay`) of a conversation that a concern paused is not due: it waits, queued, and
goes out once the conversation is resumed. When a conversation is closed or ends (`settle_unsent`), its
copies not sent yet, written while it was open, are what its members last wrote to each other: they are
delivered (those waiting for a digest at once, one by one), unless a concern had paused it, when they are
withheld (`withhold`: state `withheld`, never sent, kept in the archive). Mail written after the close is
archived, not delivered. The relay's own notices (a farewell, a confirmation) are not held back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import ids
from relay.archive import chain
from relay.store import events, keyset
from relay.store.events import event_values
from relay.store.schema import PAUSED, outbound, pairs

UNSENT = ("queued", "digest")  # a copy that has not left yet: waiting for delivery, or for a digest
WITHHELD = "withheld"  # the state of a copy never sent: its conversation closed or ended before it left


def _due(now: datetime) -> Any:
    return (
        (outbound.c.state == "queued")
        & (outbound.c.next_attempt_at <= now)
        & or_(outbound.c.claimed_until.is_(None), outbound.c.claimed_until < now)
        & ~_paused_copy()
    )


def _paused_copy() -> Any:
    """A member's copy in a conversation that a concern paused: it waits for `pair resume` / `group resume`."""
    return (outbound.c.kind == "relay") & exists().where(pairs.c.id == outbound.c.pair_id, pairs.c.status == PAUSED)


async def settle_unsent(connection: AsyncConnection, conversation_id: int, at: datetime, why: str, *,
                        paused: bool) -> list[str]:
    """The conversation closed or ended (`why`) with its status before that `paused` or not: its members'
    copies not sent yet are withheld after a concern's pause, and otherwise delivered (the last words of a
    relationship are not lost at its end: copies waiting for a digest are queued at once). Returns the ids."""
    if paused:
        return await withhold(connection, conversation_id, at, why)
    return await flush_digest(connection, conversation_id, at)


async def flush_digest(connection: AsyncConnection, conversation_id: int, at: datetime) -> list[str]:
    """The members' copies of the conversation waiting for a digest are queued for delivery now, one by one
    (its digests end with it). Returns their ids."""
    waiting = (outbound.c.pair_id == conversation_id) & (outbound.c.kind == "relay") & (outbound.c.state == "digest")
    entry_ids = list((await connection.execute(select(outbound.c.id).where(waiting))).scalars())
    if entry_ids:
        await connection.execute(update(outbound).where(outbound.c.id.in_(entry_ids), outbound.c.state == "digest")
                                 .values(state="queued", next_attempt_at=at))
    return entry_ids


async def withhold(connection: AsyncConnection, conversation_id: int, at: datetime, why: str) -> list[str]:
    """The conversation closed or ended (`why`) after a concern paused it: its members' copies not sent yet are
    never sent (state `withheld`, with the reason in last_error; the archive keeps them). An event lists them.
    Returns their ids."""
    unsent = (outbound.c.pair_id == conversation_id) & (outbound.c.kind == "relay") & outbound.c.state.in_(UNSENT)
    entry_ids = list((await connection.execute(select(outbound.c.id).where(unsent))).scalars())
    if not entry_ids:
        return []
    await connection.execute(update(outbound).where(outbound.c.id.in_(entry_ids), outbound.c.state.in_(UNSENT))
                             .values(state=WITHHELD, last_error=f"not sent: the conversation {why} before it left"))
    await events.record(connection, "copies.withheld", at, pair_id=conversation_id, outbound_ids=entry_ids,
                        reason=why)
    return entry_ids


async def entry_exists(connection: AsyncConnection, entry_id: str) -> bool:
    return (await connection.execute(select(outbound.c.id).where(outbound.c.id == entry_id))).first() is not None


async def any_due(connection: AsyncConnection, now: datetime) -> bool:
    return (await connection.execute(select(outbound.c.id).where(_due(now)).limit(1))).first() is not None


async def claim_due(
    connection: AsyncConnection, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Any]:
    due = select(outbound.c.id).where(_due(now)).order_by(outbound.c.next_attempt_at).limit(limit)
    ids = list((await connection.execute(due)).scalars())
    if not ids:
        return []
    await connection.execute(
        update(outbound)
        .where(
            outbound.c.id.in_(ids),
            outbound.c.state == "queued",
            or_(outbound.c.claimed_until.is_(None), outbound.c.claimed_until < now),
        )
        .values(claimed_by=owner, claimed_until=now + lease)
    )
    query = select(outbound).where(
        outbound.c.id.in_(ids), outbound.c.claimed_by == owner, outbound.c.state == "queued")
    return list((await connection.execute(query)).all())


async def release_claims(connection: AsyncConnection, owner: str) -> None:
    """Forget this instance's leases (at start after a crash, and at shutdown for unsent entries)."""
    await connection.execute(
        update(outbound).where(outbound.c.claimed_by == owner, outbound.c.state == "queued")
        .values(claimed_by=None, claimed_until=None)
    )


async def mark_sent_many(connection: AsyncConnection, sent: list[tuple[Any, datetime, str]]) -> list[None]:
    """Record deliveries (entry, when, the server's reply): one UPDATE and one INSERT for all of them."""
    await connection.execute(
        update(outbound).where(outbound.c.id == bindparam("entry_id")).values(
            state="sent", sent_at=bindparam("when"), attempts=bindparam("tries"), claimed_by=None,
            claimed_until=None, last_error=None),
        [{"entry_id": entry.id, "when": at, "tries": entry.attempts + 1} for entry, at, _ in sent],
    )
    await events.write(connection, [
        event_values("delivered", at, pair_id=entry.pair_id, message_id=entry.message_id, outbound_id=entry.id,
                     response=response) for entry, at, response in sent])
    return [None] * len(sent)


async def mark_deferred(connection: AsyncConnection, entry: Any, at: datetime, retry_at: datetime, error: str) -> None:
    await connection.execute(
        update(outbound).where(outbound.c.id == entry.id)
        .values(attempts=entry.attempts + 1, next_attempt_at=retry_at, claimed_by=None, claimed_until=None,
                last_error=error)
    )
    await events.write(connection, [event_values(
        "deferred", at, pair_id=entry.pair_id, message_id=entry.message_id, outbound_id=entry.id,
        error=error, retry_at=retry_at.isoformat())])


async def mark_failed(connection: AsyncConnection, entry: Any, at: datetime, error: str) -> None:
    await connection.execute(
        update(outbound).where(outbound.c.id == entry.id)
        .values(state="failed", attempts=entry.attempts + 1, claimed_by=None, claimed_until=None, last_error=error)
    )
    await events.write(connection, [event_values(
        "delivery_failed", at, pair_id=entry.pair_id, message_id=entry.message_id, outbound_id=entry.id,
        error=error)])


async def list_outbound(connection: AsyncConnection, state: str | None = None, limit: int = 1000) -> list[Any]:
    return (await outbound_page(connection, state=state, limit=limit))[0]


async def outbound_page(connection: AsyncConnection, *, state: str | None = None, limit: int = 1000,
                        after: str | None = None) -> tuple[list[Any], str | None]:
    """One page of the queue, oldest first (created_at, id), after the cursor `after` (keyset:
    relay/store/keyset.py), in one indexed query. Returns the rows and the next page's cursor (None on the
    last page); a cursor this relay did not write raises keyset.BadCursor."""
    order = [outbound.c.created_at, outbound.c.id]
    query = select(
        outbound.c.id, outbound.c.message_id, outbound.c.pair_id, outbound.c.state, outbound.c.attempts,
        outbound.c.next_attempt_at, outbound.c.last_error, outbound.c.created_at, outbound.c.sent_at,
    ).order_by(*order)
    if state is not None:
        query = query.where(outbound.c.state == state)
    if after is not None:
        query = query.where(keyset.after(order, keyset.decode(after, (datetime, str))))
    found = list((await connection.execute(query.limit(limit + 1))).all())
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], keyset.encode([last.created_at, last.id])


async def queue_outbound(
    connection: AsyncConnection, *, kind: str, rcpt: str, raw: bytes, out_message_id: str, now: datetime,
    domain: str, pair_id: int | None, message_id: str | None, state: str = "queued",
) -> str:
    """Put one message (relayed or a notice) on the outbound queue, chained into the archive; its
    envelope sender is per entry."""
    values = outbound_values(kind=kind, rcpt=rcpt, raw=raw, out_message_id=out_message_id, now=now, domain=domain,
                             pair_id=pair_id, message_id=message_id, state=state)
    await connection.execute(outbound.insert().values(values))
    await chain.append(connection, [chain.outbound_link(values)])
    return str(values["id"])


async def insert_rows(connection: AsyncConnection, rows: list[dict[str, Any]]) -> list[chain.Link]:
    """Insert outbound rows (`outbound_values`) in one statement without chaining them: returns their chain
    links, for a writer that chains several tables in one `chain.append` in the same transaction (the nudge
    sweep's chunks; events.insert_rows is the same for events)."""
    await connection.execute(outbound.insert(), rows)
    return [chain.outbound_link(row) for row in rows]


def outbound_values(
    *, kind: str, rcpt: str, raw: bytes, out_message_id: str, now: datetime, domain: str, pair_id: int | None,
    message_id: str | None, state: str = "queued",
) -> dict[str, Any]:
    """`state` queued (for delivery) or digest (held back for the recipient's digest: relay/digests/)."""
    outbound_id = ids.queue_id()
    return {
        "id": outbound_id, "message_id": message_id, "pair_id": pair_id, "kind": kind, "rcpt": rcpt,
        "mail_from": f"bounce+{outbound_id}@{domain}", "out_message_id": out_message_id, "raw": raw,
        "state": state, "attempts": 0, "next_attempt_at": now, "created_at": now, "claimed_by": None,
        "claimed_until": None, "last_error": None, "sent_at": None,
    }


async def recipients(connection: AsyncConnection, outbound_ids: list[str]) -> dict[str, tuple[str, str]]:
    """For each outbound entry: (kind, real recipient address); kind is relay (the partner's copy) or notice."""
    if not outbound_ids:
        return {}
    rows = (await connection.execute(select(outbound.c.id, outbound.c.kind, outbound.c.rcpt)
                                     .where(outbound.c.id.in_(outbound_ids)))).all()
    return {row.id: (row.kind, row.rcpt) for row in rows}
