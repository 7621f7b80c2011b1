"""Erasing personal data from the store while the archive chain still verifies: the steps shared by
retention (relay.archive.retention, a pair after its period) and `person erase` (relay.archive.person).

- Message bodies (raw bytes, subject, real addresses) are emptied; the row stays as a tombstone and the
  digest of what was removed goes into the erasing event (relay.archive.chain.body_digest). An outbound
  row not sent yet is marked failed ("erased before it was sent"): nothing empty is ever delivered.
- Event details keep their shape; the personal part is replaced (relay.archive.personal). An event's
  chain entry hashes its detail, so the erasing event keeps, for each event changed, the content hash it
  had before (`was`, the chain entry's hash for a first erasure) and the one it has now (`now`):
  `archive verify` checks the entry against the first `was`, each erasure's `was` against the one before's
  `now`, and the row against the last `now`. The erasing event is itself chained.
- The last delivery error kept on a queue entry (a smarthost's refusal quotes the recipient's address:
  "550 5.1.1 <jane@...>: Recipient address rejected") is scrubbed as free text (`scrub_errors`); it is
  delivery state, outside the chain's hash.
- Notices that name a person to somebody else (the contact exchange's "share_done" gives each member the
  other's real name and address; a coordinator's notice may quote a reason naming them) are found by
  reading them as their reader would (relay.archive.reading), before the write transaction
  (`scan_notices`), and emptied like the rest (`naming_notices`).
- Members' real names and addresses are replaced (`erased-<id>@erased.invalid`, ERASED), nicknames
  dropped, further addresses deleted; hold reasons and moderators' notes are scrubbed; moderators'
  edits of the messages (redacted copies) are deleted. None of these tables is chained.

Every step runs in the caller's write transaction. On SQLite, `erasing_transaction` makes SQLite overwrite
the freed bytes (PRAGMA secure_delete) and `checkpoint` moves the WAL into the main file and empties it, so
that an erased address is no longer in the database files.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.archive import chain, reading
from relay.archive.personal import ERASED, Eraser
from relay.store import checkpoints
from relay.store.database import take_write_lock
from relay.store.schema import archive_chain, events, held, member_addresses, members, message_edits, messages, outbound

ERASED_DOMAIN = "erased.invalid"
MAX_MENTIONS = 5000  # events a scan before the write transaction may name (scan_mentions)
UNSENT = ("queued", "digest")
NOT_SENT = "erased before it was sent"


@dataclass
class Erased:
    """What one erasure changed, and what its event keeps for `archive verify`."""

    bodies: dict[str, dict[str, str]] = field(default_factory=lambda: {"message": {}, "outbound": {}})
    events: dict[str, list[str]] = field(default_factory=dict)  # event id -> [hash before, hash now]
    members: int = 0
    held: int = 0
    edits: int = 0
    errors: int = 0  # queue entries whose last delivery error was scrubbed

    @property
    def changed(self) -> bool:
        return bool(self.bodies["message"] or self.bodies["outbound"] or self.events or self.members
                    or self.held or self.edits or self.errors)

    def counts(self) -> dict[str, int]:
        return {"messages": len(self.bodies["message"]), "outbound": len(self.bodies["outbound"]),
                "events_scrubbed": len(self.events), "members_erased": self.members, "held_scrubbed": self.held,
                "edits_deleted": self.edits, "errors_scrubbed": self.errors}

    def detail(self) -> dict[str, Any]:
        """The erasing event's detail: counts, and the digests `archive verify` needs (no personal data)."""
        return {**self.counts(), "bodies": self.bodies, "events": self.events}


def erased_address(member_id: int) -> str:
    return f"erased-{member_id}@{ERASED_DOMAIN}"


async def eraser_for(connection: AsyncConnection, member_ids: list[int]) -> Eraser:
    """The known strings of these members: their addresses (every one), real names and nicknames."""
    known: list[str] = []
    if member_ids:
        for row in (await connection.execute(select(members.c.email, members.c.name, members.c.nicknames)
                                             .where(members.c.id.in_(member_ids)))).all():
            known += [row.email, row.name, *json.loads(row.nicknames or "[]")]
        known += (await connection.execute(select(member_addresses.c.email)
                                           .where(member_addresses.c.member_id.in_(member_ids)))).scalars().all()
    return Eraser(k for k in known if not k.endswith("@" + ERASED_DOMAIN) and k != ERASED)


async def purge_bodies(connection: AsyncConnection, done: Erased, *, message_where: Any, outbound_where: Any) -> None:
    """Empty the bodies of the messages and outbound rows chosen (those that still have one)."""
    for kind, table, where in (("message", messages, message_where), ("outbound", outbound, outbound_where)):
        if where is None:
            continue
        columns = [table.c.id, *(table.c[name] for name in chain.BODY_FIELDS[kind])]
        rows = (await connection.execute(select(*columns).where(where, func.length(table.c.raw) > 0))).all()
        if not rows:
            continue
        digests = {str(row.id): chain.body_digest(kind, row._mapping) for row in rows}
        tombstone = {name: chain.TOMBSTONE[name] for name in chain.BODY_FIELDS[kind]}
        await connection.execute(update(table).where(table.c.id.in_(list(digests))).values(tombstone))
        if table is outbound:  # not sent yet: never sent now (the delivery state is outside the chain's hash)
            await connection.execute(update(outbound).where(
                outbound.c.id.in_(list(digests)), outbound.c.state.in_(UNSENT)).values(
                state="failed", last_error=NOT_SENT))
        done.bodies[kind].update(digests)


async def scrub_errors(connection: AsyncConnection, done: Erased, eraser: Eraser, where: Any) -> None:
    """The last delivery error of the queue entries chosen, as free text: a smarthost's refusal names the
    recipient's address ("550 5.1.1 <jane@...>: Recipient address rejected"), `queue list` prints it, and
    it is no part of the body a purge empties (the delivery state is outside the chain's hash)."""
    rows = (await connection.execute(select(outbound.c.id, outbound.c.last_error)
                                     .where(where, outbound.c.last_error.is_not(None)))).all()
    for row in rows:
        cleaned = eraser.text(row.last_error, free=True)
        if cleaned != row.last_error:
            await connection.execute(update(outbound).where(outbound.c.id == row.id).values(last_error=cleaned))
            done.errors += 1


NOTICE_CHUNK = 200  # notices read at a time when looking for the ones naming someone


@dataclass(frozen=True)
class NoticeScan:
    """The notices (in a scope) naming someone's known strings, or carrying a conversation, found by reading
    each before the write transaction: `ids`, among the queue entries chained up to the entry `upto`."""

    terms: tuple[str, ...]
    upto: int
    ids: tuple[str, ...]


async def _naming(connection: AsyncConnection, eraser: Eraser, where: Any) -> list[str]:
    """The notices chosen by `where` (with a body) that name one of the eraser's known strings to their reader,
    or carry a conversation (the farewell's attachment: the messages of everyone in it)."""
    ids = list((await connection.execute(select(outbound.c.id).where(
        where, outbound.c.kind == "notice", func.length(outbound.c.raw) > 0).order_by(outbound.c.id))).scalars())
    terms = eraser.known
    found = []
    for start in range(0, len(ids), NOTICE_CHUNK):
        chunk = ids[start:start + NOTICE_CHUNK]
        for row in (await connection.execute(select(outbound.c.id, outbound.c.raw)
                                             .where(outbound.c.id.in_(chunk)))).all():
            read = reading.read(bytes(row.raw))
            if read.conversation or read.names(terms):
                found.append(row.id)
    return found


async def scan_notices(connection: AsyncConnection, eraser: Eraser, where: Any) -> NoticeScan:
    """Read the notices chosen by `where` for the eraser's known strings, before the write transaction (a
    notice's bytes are MIME: no index or LIKE finds a name in base64), remembering the chain's head."""
    upto = (await connection.execute(select(func.max(archive_chain.c.seq)))).scalar() or 0
    return NoticeScan(tuple(eraser.search_terms()), upto, tuple(await _naming(connection, eraser, where)))


async def naming_notices(connection: AsyncConnection, eraser: Eraser, where: Any, scan: NoticeScan | None) -> Any:
    """A WHERE clause on outbound: the notices chosen by `where` that name the eraser's known strings (or carry
    a conversation). With a scan made for the same strings, only the notices queued since it are read (a
    queue entry is chained in the transaction that writes it, under the writers' lock, and its bytes never
    change but to be emptied); without one, every notice chosen is."""
    if scan is None or scan.terms != tuple(eraser.search_terms()):
        return outbound.c.id.in_(await _naming(connection, eraser, where))
    since = select(archive_chain.c.ref).where(archive_chain.c.kind == "outbound", archive_chain.c.seq > scan.upto)
    fresh = await _naming(connection, eraser, where & outbound.c.id.in_(since))
    return outbound.c.id.in_([*scan.ids, *fresh])


async def scrub_events(connection: AsyncConnection, done: Erased, eraser: Eraser, where: Any) -> None:
    """Take the personal data out of the details of the events chosen, keeping their hashes before and after."""
    columns = [events.c.id, *(events.c[name] for name in chain.EVENT_FIELDS)]
    for row in (await connection.execute(select(*columns).where(where).order_by(events.c.id))).all():
        cleaned = eraser.json_text(row.detail)
        if cleaned == row.detail:
            continue
        before = chain.content_hash("event", row._mapping)
        after = chain.content_hash("event", {**row._mapping, "detail": cleaned})
        await connection.execute(update(events).where(events.c.id == row.id).values(detail=cleaned))
        done.events[str(row.id)] = [before, after]


def mentions(eraser: Eraser) -> Any:
    """A WHERE clause on events: the detail holds one of the eraser's known strings."""
    terms = eraser.search_terms()
    return or_(*(events.c.detail.ilike(f"%{term}%") for term in terms)) if terms else events.c.id < 0


@dataclass(frozen=True)
class MentionScan:
    """The events whose detail named someone's known strings, found by reading every event before the
    write transaction (no index can find a substring): `ids`, among the events up to `upto`."""

    terms: tuple[str, ...]
    upto: int
    ids: tuple[int, ...]


async def scan_mentions(connection: AsyncConnection, eraser: Eraser) -> MentionScan | None:
    """The events mentioning the eraser's known strings, read outside any write transaction: read inside one,
    the whole table (1.3 s at a million messages on SQLite) would hold the lock every accept waits for (SQLite's
    one writer; on PostgreSQL the writers' lock, which every write transaction takes first: relay/store/database.py).
    None when more than MAX_MENTIONS are found (the transaction then reads every event itself)."""
    upto = (await connection.execute(select(func.max(events.c.id)))).scalar() or 0
    found = (await connection.execute(select(events.c.id).where(mentions(eraser), events.c.id <= upto)
                                      .limit(MAX_MENTIONS + 1))).scalars().all()
    if len(found) > MAX_MENTIONS:
        return None
    return MentionScan(tuple(eraser.search_terms()), upto, tuple(found))


def mentioning(eraser: Eraser, scan: MentionScan | None) -> Any:
    """`mentions(eraser)`, narrowed by a scan made for the same strings to what it found and the events
    written since: events get their ids in the order their transactions commit (SQLite has one writer at a
    time; PostgreSQL inserts them under the writers' lock) and are never deleted, so an event committed after
    the scan has an id above `upto`, and one the erasure cannot see yet is not committed until after it (it
    holds the writers' lock while it reads); and an erasure only ever
    takes strings out of a detail, so an event the scan did not find cannot name them now. Without a scan,
    or with one made for other strings (an address added meanwhile), every event is read."""
    found = mentions(eraser)
    if scan is None or scan.terms != tuple(eraser.search_terms()):
        return found
    since = events.c.id > scan.upto
    if not scan.ids:  # (an empty IN would leave SQLite's planner no condition on the id: it reads every event)
        return found & since
    # `id IN` a union, not an OR of the two: with the ORDER BY id of scrub_events, SQLite reads every event
    # in id order rather than search the ids under an OR
    return found & any_of(events, events.c.id.in_(scan.ids), since)


def any_of(table: Any, *conditions: Any) -> Any:
    """`table`'s rows that meet any of `conditions`, as `id IN` one indexed read per condition: under an OR,
    PostgreSQL combines no index with a subquery's IN, and reads the whole table."""
    return table.c.id.in_(union_all(*(select(table.c.id).where(condition) for condition in conditions)))


async def scrub_held(connection: AsyncConnection, done: Erased, eraser: Eraser, where: Any) -> None:
    """Hold reasons (what the rules matched), the reasons moderators gave and the subject staff mail quotes,
    of the hold rows chosen."""
    rows = (await connection.execute(select(held.c.message_id, held.c.reasons, held.c.reject_reason,
                                            held.c.staff_subject).where(where))).all()
    for row in rows:
        reasons = eraser.json_text(row.reasons, events=False)
        note = eraser.text(row.reject_reason, free=True) if row.reject_reason else row.reject_reason
        subject = eraser.text(row.staff_subject, free=True) if row.staff_subject else row.staff_subject
        if (reasons, note, subject) != (row.reasons, row.reject_reason, row.staff_subject):
            await connection.execute(update(held).where(held.c.message_id == row.message_id)
                                     .values(reasons=reasons, reject_reason=note, staff_subject=subject))
            done.held += 1


async def drop_edits(connection: AsyncConnection, done: Erased, message_ids: Any) -> None:
    """Moderators' edited copies of the messages chosen (a select of message ids)."""
    result = await connection.execute(delete(message_edits).where(message_edits.c.message_id.in_(message_ids)))
    done.edits += int(result.rowcount or 0)


async def erase_members(connection: AsyncConnection, done: Erased, member_ids: list[int]) -> None:
    """Replace the members' real names and addresses, drop their nicknames and further addresses."""
    if not member_ids:
        return
    await connection.execute(delete(member_addresses).where(member_addresses.c.member_id.in_(member_ids)))
    address = "erased-" + cast(members.c.id, String) + ("@" + ERASED_DOMAIN)
    result = await connection.execute(
        update(members).where(members.c.id.in_(member_ids), members.c.email_key.not_like(f"%@{ERASED_DOMAIN}"))
        .values(email=address, email_key=address, name=ERASED, nicknames=None))
    done.members += int(result.rowcount or 0)


@asynccontextmanager
async def erasing_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction (relay.store.database.transaction) in which SQLite overwrites the bytes it
    frees (PRAGMA secure_delete, on this connection only, turned off again before it goes back to the
    pool); PostgreSQL's own VACUUM reclaims dead rows."""
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as connection:
        writer = await connection.execution_options(write=True)
        try:
            async with writer.begin():
                if sqlite:
                    await writer.exec_driver_sql("PRAGMA secure_delete=ON")
                await take_write_lock(writer)
                yield writer
        finally:
            if sqlite:
                await connection.exec_driver_sql("PRAGMA secure_delete=OFF")
                await connection.rollback()


async def checkpoint(engine: AsyncEngine) -> bool:
    """Move SQLite's WAL into the main file and empty it; False when readers kept it from completing."""
    found = await checkpoints.checkpoint(engine, "TRUNCATE")
    return found is None or not found.busy
