"""Retention: purging the message bodies of closed pairs whose retention period is over.

A program's `retention` says how long after a pair closed its bodies are kept: `after_close`, or
`after_concern` when a "concern" event was recorded for the pair (unset: kept for ever). A pair under
legal hold (relay.archive.hold) is never purged. Purging a pair, in one transaction: every inbound
message and outbound copy of the pair keeps its row as a tombstone, its body (raw bytes, subject, real
addresses) is emptied, and one "archive.purge" event records the digest of each body removed, so that
`archive verify` still checks every row against the chain. The event is itself chained.

The daily job calls `purge_expired`; `archive purge` runs it by hand (with --now and --dry-run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.archive import chain
from relay.archive.hold import held_pairs, lock_pair
from relay.archive.verify import PURGE_EVENT
from relay.clock import Clock
from relay.config import ProgramConfig, Settings
from relay.metrics import sweep_timer
from relay.store import events
from relay.store.database import transaction
from relay.store.schema import events as events_table
from relay.store.schema import messages, outbound, pairs

CONCERN = "concern"


@dataclass(frozen=True)
class Expired:
    pair_id: int
    program: str
    rule: str  # after_close | after_concern
    expired_at: datetime
    messages: int = 0
    outbound: int = 0


@dataclass
class PurgeReport:
    now: datetime
    dry_run: bool
    purged: list[Expired] = field(default_factory=list)
    on_hold: list[int] = field(default_factory=list)  # expired, but under legal hold: kept

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now, "dry_run": self.dry_run, "purged": [asdict(e) for e in self.purged],
                "on_hold": self.on_hold}


def _period(program: ProgramConfig, concern: bool) -> tuple[str, timedelta | None]:
    if concern:
        return "after_concern", program.retention.after_concern
    return "after_close", program.retention.after_close


async def expired_pairs(connection: AsyncConnection, settings: Settings, now: datetime) -> list[Expired]:
    """Closed pairs of programs with a retention policy whose period is over (legal hold not considered)."""
    programs = {pid: p for pid, p in settings.programs.items()
                if p.retention.after_close is not None or p.retention.after_concern is not None}
    if not programs:
        return []
    closed = (await connection.execute(
        select(pairs.c.id, pairs.c.program_id, pairs.c.closed_at)
        .where(pairs.c.program_id.in_(list(programs)), pairs.c.status == "closed", pairs.c.closed_at.is_not(None))
        .order_by(pairs.c.id))).all()
    concerned = set((await connection.execute(
        select(events_table.c.pair_id).where(events_table.c.kind == CONCERN,
                                             events_table.c.pair_id.in_([row.id for row in closed])))).scalars())
    found = []
    for row in closed:
        rule, period = _period(programs[row.program_id], row.id in concerned)
        if period is not None and row.closed_at + period <= now:
            found.append(Expired(row.id, row.program_id, rule, row.closed_at + period))
    return found


def _of_pair(table: Any, pair_id: int) -> Any:
    """Rows of the pair that still have a body."""
    if table is outbound:
        owned = or_(outbound.c.pair_id == pair_id,
                    outbound.c.message_id.in_(select(messages.c.id).where(messages.c.pair_id == pair_id)))
    else:
        owned = messages.c.pair_id == pair_id
    return owned & (func.length(table.c.raw) > 0)


async def _bodies(connection: AsyncConnection, pair_id: int) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for kind, table in (("message", messages), ("outbound", outbound)):
        columns = [table.c.id, *(table.c[name] for name in chain.BODY_FIELDS[kind])]
        rows = (await connection.execute(select(*columns).where(_of_pair(table, pair_id)))).all()
        found[kind] = {str(row.id): chain.body_digest(kind, row._mapping) for row in rows}
    return found


async def _purge_pair(connection: AsyncConnection, item: Expired, now: datetime) -> Expired | None:
    bodies = await _bodies(connection, item.pair_id)
    if not bodies["message"] and not bodies["outbound"]:
        return None  # purged before
    for kind, table in (("message", messages), ("outbound", outbound)):
        if bodies[kind]:
            tombstone = {name: chain.TOMBSTONE[name] for name in chain.BODY_FIELDS[kind]}
            await connection.execute(update(table).where(table.c.id.in_(list(bodies[kind]))).values(tombstone))
    done = Expired(item.pair_id, item.program, item.rule, item.expired_at, len(bodies["message"]),
                   len(bodies["outbound"]))
    await events.record(connection, PURGE_EVENT, now, pair_id=item.pair_id, rule=item.rule,
                        expired_at=item.expired_at.isoformat(), messages=done.messages, outbound=done.outbound,
                        bodies=bodies)
    return done


async def purge_expired(engine: AsyncEngine, clock: Clock, settings: Settings, *,
                        dry_run: bool = False) -> PurgeReport:
    """Purge every expired pair not under legal hold, one transaction per pair (timed for /metrics)."""
    with sweep_timer("retention"):
        return await _purge(engine, clock.now(), settings, dry_run)


async def _purge(engine: AsyncEngine, now: datetime, settings: Settings, dry_run: bool) -> PurgeReport:
    report = PurgeReport(now, dry_run)
    async with engine.connect() as connection:
        candidates = await expired_pairs(connection, settings, now)
    for item in candidates:
        if dry_run:
            async with engine.connect() as connection:
                await _preview(connection, item, report)
            continue
        async with transaction(engine) as connection:  # the hold is read under the write lock
            await lock_pair(connection, item.pair_id)
            if item.pair_id in await held_pairs(connection, [item.pair_id]):
                report.on_hold.append(item.pair_id)
                continue
            done = await _purge_pair(connection, item, now)
            if done is not None:
                report.purged.append(done)
    return report


async def _preview(connection: AsyncConnection, item: Expired, report: PurgeReport) -> None:
    if item.pair_id in await held_pairs(connection, [item.pair_id]):
        report.on_hold.append(item.pair_id)
        return
    bodies = await _bodies(connection, item.pair_id)
    if bodies["message"] or bodies["outbound"]:
        report.purged.append(Expired(item.pair_id, item.program, item.rule, item.expired_at,
                                     len(bodies["message"]), len(bodies["outbound"])))
