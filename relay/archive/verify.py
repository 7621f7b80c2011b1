"""Verifying the archive: walk the hash chain and report the first entry that does not match.

The walk checks, entry by entry in seq order: that no entry is missing (seq has no gap), that each
entry names the hash of the one before (a reordered or removed entry breaks this), that the entry's own
hash matches its fields (an edited entry), that the row it names still exists (a removed row) and that
the row's content hash is unchanged (an edited row). A row whose body was purged (retention, or a person's
erasure) is checked against the body digest kept by the purging event, which is itself chained. An event
whose detail was scrubbed of personal data is checked through the hashes the scrubbing events kept
(relay.archive.erasure): the chain entry against the first one's "before", each "before" against the
previous "after", the row against the last "after". After the walk, any archived row without an entry
(written around the store, or whose entry was removed at the end) is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.archive import chain
from relay.store.schema import archive_chain, events, messages, outbound

PURGE_EVENT = "archive.purge"
ERASE_EVENT = "person.erase"
ERASING_EVENTS = (PURGE_EVENT, ERASE_EVENT)
PAGE = 2000

_TABLES: dict[str, Any] = {"message": messages, "outbound": outbound, "event": events}


@dataclass(frozen=True)
class Problem:
    seq: int | None  # the entry where the chain first fails (None: a row outside the chain)
    kind: str  # message | outbound | event
    ref: str
    what: str

    def describe(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "outside the chain"
        return f"{where} ({self.kind} {self.ref}): {self.what}"


@dataclass(frozen=True)
class Verdict:
    entries: int  # entries checked
    head: str  # the last good entry's hash
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": self.head,
                "problem": asdict(self.problem) if self.problem else None}


@dataclass
class Erasures:
    """What the chained erasing events (purges, erasures) say was taken out of archived rows."""

    bodies: dict[tuple[str, str], str]  # (kind, id) -> body digest
    events: dict[str, list[tuple[str, str]]]  # event id -> (hash before, hash after) per scrub, in order


async def erasures(connection: AsyncConnection) -> Erasures:
    query = (select(events.c.detail).where(events.c.kind.in_(ERASING_EVENTS), exists().where(
        archive_chain.c.kind == "event", archive_chain.c.ref == cast(events.c.id, String))).order_by(events.c.id))
    found = Erasures({}, {})
    for (detail,) in (await connection.execute(query)).all():
        data = json.loads(detail)
        bodies = data.get("bodies", {})
        for kind in ("message", "outbound"):
            for ref, digest in bodies.get(kind, {}).items():
                found.bodies[(kind, ref)] = digest
        for ref, (before, after) in data.get("events", {}).items():
            found.events.setdefault(ref, []).append((before, after))
    return found


async def _rows(connection: AsyncConnection, kind: str, refs: list[str]) -> dict[str, Any]:
    table = _TABLES[kind]
    if kind == "event":
        keys = [int(ref) for ref in refs if ref.isdigit()]
        query = select(table).where(table.c.id.in_(keys))
    else:
        query = select(table).where(table.c.id.in_(refs))
    return {str(row.id): row._mapping for row in (await connection.execute(query)).all()}


def _scrubbed_problem(row: Any, entry: Any, scrubs: list[tuple[str, str]]) -> str | None:
    expected = entry.content_hash
    for before, after in scrubs:
        if before != expected:
            return "the event was scrubbed of personal data, but not from the content the chain holds"
        expected = after
    if chain.content_hash("event", row) != expected:
        return "the archived row was changed after its personal data was scrubbed (its content hash does not match)"
    return None


def _row_problem(kind: str, row: Any, entry: Any, erased: Erasures) -> str | None:
    if row is None:
        return "the archived row was removed"
    if kind == "event" and entry.ref in erased.events:
        return _scrubbed_problem(row, entry, erased.events[entry.ref])
    body = erased.bodies.get((kind, entry.ref))
    if body is not None and any(row[name] != chain.TOMBSTONE[name] for name in chain.BODY_FIELDS[kind]):
        return "the row was purged, yet it has a body again"
    if chain.content_hash(kind, row, body) != entry.content_hash:
        return "the archived row was changed (its content hash does not match)"
    return None


def _entry_problem(entry: Any, expected_seq: int, prev: str) -> str | None:
    if entry.seq != expected_seq:
        return f"entries {expected_seq} to {entry.seq - 1} are missing"
    if entry.prev_hash != prev:
        return "the entry does not follow the one before it (an entry was removed, inserted or reordered)"
    digest = chain.entry_hash(entry.seq, entry.at, entry.kind, entry.ref, entry.pair_id, entry.content_hash,
                              entry.prev_hash)
    if digest != entry.entry_hash:
        return "the chain entry itself was changed"
    return None


async def _unchained(connection: AsyncConnection) -> Problem | None:
    for kind, table in _TABLES.items():
        key = cast(table.c.id, String) if kind == "event" else table.c.id
        covered = exists().where(and_(archive_chain.c.kind == kind, archive_chain.c.ref == key))
        row = (await connection.execute(select(table.c.id).where(~covered).limit(1))).first()
        if row is not None:
            return Problem(None, kind, str(row.id), "the row is not in the chain (written around the store, "
                           "or its chain entry was removed)")
    return None


async def verify(engine: AsyncEngine, progress: Callable[[int], None] | None = None) -> Verdict:
    """Walk the whole chain; `progress(n)` is called with the number of entries checked per page."""
    async with engine.connect() as connection:
        erased = await erasures(connection)
        prev, expected, checked = chain.GENESIS, 1, 0
        while True:
            page = (await connection.execute(select(archive_chain).where(archive_chain.c.seq >= expected)
                                             .order_by(archive_chain.c.seq).limit(PAGE))).all()
            if not page:
                break
            rows: dict[str, dict[str, Any]] = {}
            for kind in _TABLES:
                refs = [entry.ref for entry in page if entry.kind == kind]
                rows[kind] = await _rows(connection, kind, refs) if refs else {}
            for entry in page:
                what = _entry_problem(entry, expected, prev)
                if what is None:
                    what = (_row_problem(entry.kind, rows[entry.kind].get(entry.ref), entry, erased)
                            if entry.kind in _TABLES else f"unknown kind of entry {entry.kind!r}")
                if what is not None:
                    return Verdict(checked, prev, Problem(expected, entry.kind, entry.ref, what))
                prev, expected, checked = entry.entry_hash, entry.seq + 1, checked + 1
            if progress is not None:
                progress(len(page))
        return Verdict(checked, prev, await _unchained(connection))


async def chain_length(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(archive_chain))).scalar_one())
