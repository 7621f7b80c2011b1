"""Retention: erasing the record of pairs (and groups) that ended or were closed and whose retention
period is over.

A program's `retention` says how long after a pair closed or reached its end date (status `closed` or
`ended`; `closed_at` is when) its record is kept: `after_close`, or `after_concern` when a "concern" event
was recorded for the pair (unset: kept for ever). A pair or group under legal hold (relay.archive.hold) is
never purged. Purging a pair, in one transaction (relay.archive.erasure does each step):
- every inbound message and outbound copy of the pair keeps its row as a tombstone, its body (raw
  bytes, subject, real addresses) emptied, and the last delivery error kept with a copy (a refusal quoting
  the recipient's address) scrubbed;
- its members' real names and addresses are replaced, their nicknames and further addresses dropped;
- its events' details lose contact details and the members' names and addresses (relay.archive.personal);
  the hold queue's reasons and moderators' notes too; moderators' edited copies are deleted;
- one "archive.purge" event records the digest of each body removed and each scrubbed event's hashes,
  so that `archive verify` still checks every row against the chain. The event is itself chained.
A pair purged before this erased personal data (bodies only) has the rest erased on the next run.

The daily job calls `purge_expired`; `archive purge` runs it by hand (with --now and --dry-run). Both take a
pair's write transaction only when something of it is left to erase (`left_to_purge`): a pair purged on an
earlier day is not purged again unless something of it was written since.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.archive import erasure
from relay.archive.erasure import Erased, eraser_for
from relay.archive.hold import held_pairs
from relay.archive.verify import PURGE_EVENT
from relay.clock import Clock
from relay.config import ProgramConfig, Settings
from relay.metrics import sweep_timer
from relay.store import events
from relay.store.database import take_write_lock
from relay.store.schema import events as events_table
from relay.store.schema import held, member_addresses, members, messages, outbound, pairs

CONCERN = "concern"
ENDED = ("closed", "ended")


@dataclass(frozen=True)
class Expired:
    pair_id: int
    program: str
    rule: str  # after_close | after_concern
    expired_at: datetime
    messages: int = 0
    outbound: int = 0
    members_erased: int = 0
    events_scrubbed: int = 0
    kind: str = "pair"  # pair | group | community


@dataclass
class PurgeReport:
    now: datetime
    dry_run: bool
    purged: list[Expired] = field(default_factory=list)
    on_hold: list[int] = field(default_factory=list)  # expired, but under legal hold: kept
    kinds: dict[int, str] = field(default_factory=dict)  # of those kept: pair | group | community

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now, "dry_run": self.dry_run, "purged": [asdict(e) for e in self.purged],
                "on_hold": self.on_hold}


def _period(program: ProgramConfig, concern: bool) -> tuple[str, timedelta | None]:
    if concern:
        return "after_concern", program.retention.after_concern
    return "after_close", program.retention.after_close


async def expired_pairs(connection: AsyncConnection, settings: Settings, now: datetime) -> list[Expired]:
    """Closed and ended pairs of programs with a retention policy whose period is over (legal hold not
    considered)."""
    programs = {pid: p for pid, p in settings.programs.items()
                if p.retention.after_close is not None or p.retention.after_concern is not None}
    if not programs:
        return []
    ended = (pairs.c.program_id.in_(list(programs)), pairs.c.status.in_(ENDED), pairs.c.closed_at.is_not(None))
    closed = (await connection.execute(
        select(pairs.c.id, pairs.c.program_id, pairs.c.closed_at, pairs.c.kind).where(*ended)
        .order_by(pairs.c.id))).all()
    # the ended pairs as a subquery, not a list of their ids: at 100k ended pairs that list would be over
    # PostgreSQL's 32,767 parameters a statement
    concerned = set((await connection.execute(
        select(events_table.c.pair_id).where(events_table.c.kind == CONCERN,
                                             events_table.c.pair_id.in_(select(pairs.c.id).where(*ended))))).scalars())
    found = []
    for row in closed:
        rule, period = _period(programs[row.program_id], row.id in concerned)
        if period is not None and row.closed_at + period <= now:
            found.append(Expired(row.id, row.program_id, rule, row.closed_at + period, kind=row.kind))
    return found


def _outbound_of(pair_id: int) -> Any:
    """The pair's queue entries: its notices (by pair) and the copies of its messages."""
    return erasure.any_of(outbound, outbound.c.pair_id == pair_id,
                          outbound.c.message_id.in_(select(messages.c.id).where(messages.c.pair_id == pair_id)))


async def erase_pair(connection: AsyncConnection, pair_id: int) -> Erased:
    """Every erasing step for one conversation, in the caller's transaction (nothing recorded)."""
    done = Erased()
    of_pair = select(messages.c.id).where(messages.c.pair_id == pair_id)
    member_ids = list((await connection.execute(select(members.c.id).where(members.c.pair_id == pair_id))).scalars())
    eraser = await eraser_for(connection, member_ids)
    await erasure.purge_bodies(connection, done, message_where=messages.c.pair_id == pair_id,
                               outbound_where=_outbound_of(pair_id))
    await erasure.scrub_errors(connection, done, eraser, _outbound_of(pair_id))
    await erasure.scrub_events(connection, done, eraser,
                               erasure.any_of(events_table, events_table.c.pair_id == pair_id,
                                              events_table.c.message_id.in_(of_pair)))
    await erasure.scrub_held(connection, done, eraser, held.c.pair_id == pair_id)
    await erasure.drop_edits(connection, done, of_pair)
    await erasure.erase_members(connection, done, member_ids)
    return done


async def _purge_pair(connection: AsyncConnection, item: Expired, now: datetime) -> Expired | None:
    done = await erase_pair(connection, item.pair_id)
    if not done.changed:
        return None  # purged before
    counts = done.counts()
    purged = Expired(item.pair_id, item.program, item.rule, item.expired_at, counts["messages"], counts["outbound"],
                     counts["members_erased"], counts["events_scrubbed"], item.kind)
    await events.record(connection, PURGE_EVENT, now, pair_id=item.pair_id, rule=item.rule,
                        expired_at=item.expired_at.isoformat(), **done.detail())
    return purged


async def purge_expired(engine: AsyncEngine, clock: Clock, settings: Settings, *,
                        dry_run: bool = False) -> PurgeReport:
    """Purge every expired pair not under legal hold, one transaction per pair (timed for /metrics)."""
    with sweep_timer("retention"):
        report = await _purge(engine, clock.now(), settings, dry_run)
        if report.purged and not dry_run:
            await erasure.checkpoint(engine)  # best effort: the WAL no longer holds what was erased
        return report


CHUNK = 500  # expired pairs checked at a time for something left to purge


async def left_to_purge(connection: AsyncConnection, expired: list[Expired]) -> list[Expired]:
    """The expired pairs a purge has something to do for: never purged, or with an event written since their
    last purge (every message, queue entry and notice of a pair comes with an event of its pair: a message
    after the end, a refusal naming the sender), or, guarding that rule, a member or further address not
    erased, a message or queue entry with a body, or a queue entry's delivery error with an address in it.
    Read, through indexes, before any write transaction:
    the daily purge no longer takes the write lock for each pair purged on an earlier day (11 ms each)."""
    left = []
    for start in range(0, len(expired), CHUNK):
        chunk = expired[start:start + CHUNK]
        # each pair's newest event and newest purge event, in one read of the pair's index entries
        newest = (await connection.execute(
            select(events_table.c.pair_id, func.max(events_table.c.id),
                   func.max(case((events_table.c.kind == PURGE_EVENT, events_table.c.id))))
            .where(events_table.c.pair_id.in_([item.pair_id for item in chunk]))
            .group_by(events_table.c.pair_id))).all()
        last_purge = {pair_id: purge for pair_id, _, purge in newest if purge is not None}
        changed = {pair_id for pair_id, latest, purge in newest if purge is not None and latest > purge}
        if last_purge:
            purged = list(last_purge)
            member_of = select(members.c.id).where(members.c.pair_id.in_(purged))
            for query in (
                    select(members.c.pair_id).where(members.c.pair_id.in_(purged),
                                                    members.c.email_key.not_like(f"%@{erasure.ERASED_DOMAIN}")),
                    select(members.c.pair_id).where(members.c.id.in_(
                        select(member_addresses.c.member_id).where(member_addresses.c.member_id.in_(member_of)))),
                    select(messages.c.pair_id).where(messages.c.pair_id.in_(purged), func.length(messages.c.raw) > 0),
                    select(outbound.c.pair_id).where(outbound.c.pair_id.in_(purged), func.length(outbound.c.raw) > 0),
                    # a delivery error naming an address (kept by versions that did not scrub it)
                    select(outbound.c.pair_id).where(outbound.c.pair_id.in_(purged),
                                                     outbound.c.last_error.like("%@%"))):
                changed.update((await connection.execute(query.distinct())).scalars())
        left += [item for item in chunk if item.pair_id not in last_purge or item.pair_id in changed]
    return left


async def _purge(engine: AsyncEngine, now: datetime, settings: Settings, dry_run: bool) -> PurgeReport:
    report = PurgeReport(now, dry_run)
    async with engine.connect() as connection:
        candidates = await left_to_purge(connection, await expired_pairs(connection, settings, now))
    for item in candidates:
        if dry_run:
            await _preview(engine, item, report)
            continue
        # the hold is read under the writers' lock; every event with an id below those written after this purge
        # is visible to it (on PostgreSQL too): the rule of left_to_purge holds
        async with erasure.erasing_transaction(engine) as connection:
            if item.pair_id in await held_pairs(connection, [item.pair_id]):
                report.on_hold.append(item.pair_id)
                report.kinds[item.pair_id] = item.kind
                continue
            done = await _purge_pair(connection, item, now)
            if done is not None:
                report.purged.append(done)
    return report


async def _preview(engine: AsyncEngine, item: Expired, report: PurgeReport) -> None:
    """What a purge would do: the purge itself, rolled back."""
    async with engine.connect() as connection:
        if item.pair_id in await held_pairs(connection, [item.pair_id]):
            report.on_hold.append(item.pair_id)
            report.kinds[item.pair_id] = item.kind
            return
    async with engine.connect() as connection:
        writer = await connection.execution_options(write=True)
        pending = await writer.begin()
        try:
            await take_write_lock(writer)
            done = await erase_pair(writer, item.pair_id)
        finally:
            await pending.rollback()
    if done.changed:
        counts = done.counts()
        report.purged.append(Expired(item.pair_id, item.program, item.rule, item.expired_at, counts["messages"],
                                     counts["outbound"], counts["members_erased"], counts["events_scrubbed"],
                                     item.kind))
