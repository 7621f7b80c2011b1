"""One person's data rights: everything the store holds about them (`person export`) and erasing them
(`person erase`). Both are recorded as events ("person.export", "person.erase") that name the member
records concerned by id, never the address.

A person is every member record (a pair, group or community enrolment) whose primary address or further
address (`pair address add`) is the one given, compared without regard to case.

The export is a zip file (created 0600: relay.archive.export.write_private) holding:
- person.json: the enrolments (real name, addresses, handle, alias, time zone, language, consent, ...) with
  their conversations (program, kind, status, dates, the other members by handle and role), the hold
  queue's record of their messages, and the events of their conversations: those about their own
  messages in full, the others without the other members' names and addresses, contact details or
  what a rule matched in someone else's message (relay.archive.personal);
- messages/written/: each message they wrote, byte-exact as the relay received it;
- messages/written-as-delivered/: those messages as delivered (anonymised; a group message once);
- messages/to-you/: the mail delivered to them (their partners' messages as they received them, notices);
- README.txt saying so.
Purged messages (retention) have no body left and are listed in person.json only.

Erasure, in one transaction (relay.archive.erasure does each step; refused while any of their
conversations, a pair or a group, is under legal hold, relay.archive.hold): the bodies of the messages they
wrote, of everything delivered to them and of the notices naming them to somebody else (the contact
exchange's, about their own "yes"; any notice of their conversations, or of none, whose decoded text names
them, or carrying the conversation) are emptied (tombstones and digests stay), and the delivery errors of
those queue entries and of their conversations' lose their addresses; their names, addresses and
nicknames are replaced, their further addresses deleted; the events and hold reasons about their messages
lose personal data and contact details, and every other event or hold reason naming them loses their
names and addresses; moderators' edits of their messages are deleted. Their open pairs are closed
(nobody could be written to any more) and the partner of each gets the farewell a closed pair gets (without
the contact-exchange offer, and without the conversation attached: the erased person's messages go too),
so nobody just disappears; they leave their groups and communities, and when they were a mentor of an open
group its other members are told that their mentor has left (handle only), and the coordinator that the
group has no mentor left when that is so (relay/nudges/group_lifecycle.mentor_left). `archive verify`
still passes. On
SQLite the freed bytes are overwritten and the WAL is checkpointed afterwards; and the events naming them,
found only by reading every event, and the notices naming them, found only by decoding each, are looked for
before the transaction (`scan`), since every accept waits for that transaction.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.archive import erasure
from relay.archive.erasure import Erased, eraser_for
from relay.archive.export import write_private
from relay.archive.hold import held_pairs
from relay.archive.verify import ERASE_EVENT
from relay.config import Settings
from relay.nudges.group_lifecycle import mentor_left
from relay.nudges.rules.farewell import farewells
from relay.nudges.sweep import send_planned
from relay.store import events
from relay.store.conversations import close_conversation, email_key, get_conversation, writes_as
from relay.store.database import take_write_lock, transaction
from relay.store.pairs import get_pair
from relay.store.schema import events as events_table
from relay.store.schema import held, member_addresses, members, messages, outbound, pairs

EXPORT_EVENT = "person.export"
OPEN = ("active", "paused")


class PersonError(Exception):
    """Nobody has that address, or the erasure is refused (legal hold); worded for the admin."""


@dataclass
class Person:
    """The member records of one person, found by an address."""

    address: str
    member_ids: list[int]
    pair_ids: list[int]
    emails: list[str] = field(default_factory=list)  # every address of theirs, as stored


async def find_person(connection: AsyncConnection, address: str) -> Person:
    found = (await connection.execute(select(members.c.id, members.c.pair_id, members.c.email)
                                      .where(writes_as(address)).order_by(members.c.id))).all()
    if not found:
        raise PersonError(f"nobody is enrolled with the address {address} (the store holds no enrolment "
                          f"under it: never enrolled, or erased)")
    ids = [row.id for row in found]
    others = (await connection.execute(select(member_addresses.c.email)
                                       .where(member_addresses.c.member_id.in_(ids)))).scalars().all()
    emails = sorted({row.email for row in found} | set(others), key=str.casefold)
    return Person(address, ids, sorted({row.pair_id for row in found}), emails)


def _plain(row: Any) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row._mapping.items()}


def _to_them(person: Person) -> Any:
    return func.lower(outbound.c.rcpt).in_([email_key(e) for e in person.emails])


# ---- export ----------------------------------------------------------------------------------------------

@dataclass
class Export:
    data: dict[str, Any]
    files: list[tuple[str, bytes]]

    def counts(self) -> dict[str, int]:
        folders = ("messages/written/", "messages/written-as-delivered/", "messages/to-you/")
        return {"enrolments": len(self.data["enrolments"]), "events": len(self.data["events"]),
                **{folder.split("/")[1]: sum(name.startswith(folder) for name, _ in self.files) for folder in folders}}


async def _enrolments(connection: AsyncConnection, person: Person, domain: str) -> list[dict[str, Any]]:
    rows = (await connection.execute(select(members).where(members.c.id.in_(person.member_ids))
                                     .order_by(members.c.id))).all()
    conversations = {row.id: _plain(row) for row in (await connection.execute(
        select(pairs).where(pairs.c.id.in_(person.pair_ids)))).all()}
    others = (await connection.execute(select(members.c.pair_id, members.c.role, members.c.handle)
                                       .where(members.c.pair_id.in_(person.pair_ids),
                                              members.c.id.not_in(person.member_ids))
                                       .order_by(members.c.id))).all()
    extra = (await connection.execute(select(member_addresses.c.member_id, member_addresses.c.email)
                                      .where(member_addresses.c.member_id.in_(person.member_ids)))).all()
    found = []
    for row in rows:
        record = _plain(row)
        record.pop("email_key", None)
        record.pop("handle_key", None)
        record["nicknames"] = json.loads(row.nicknames or "[]")
        record["alias_address"] = f"{row.alias}@{domain}"
        record["other_addresses"] = [e.email for e in extra if e.member_id == row.id]
        conversation = dict(conversations[row.pair_id])
        conversation["other_members"] = [{"role": o.role, "handle": o.handle} for o in others
                                         if o.pair_id == row.pair_id]
        record["conversation"] = conversation
        found.append(record)
    return found


async def gather(connection: AsyncConnection, person: Person, domain: str) -> Export:
    """Everything the store holds about `person`, as the export's JSON and files."""
    written = (await connection.execute(select(messages).where(messages.c.sender_id.in_(person.member_ids))
                                        .order_by(messages.c.received_at, messages.c.id))).all()
    own_ids = [row.id for row in written]
    files: list[tuple[str, bytes]] = []
    listed = []
    for number, row in enumerate(written, start=1):
        listed.append({key: value for key, value in _plain(row).items() if key != "raw"}
                      | {"purged": not row.raw})
        if row.raw:
            files.append((f"messages/written/{number:04d}-{row.id}.eml", bytes(row.raw)))
    copies = (await connection.execute(select(outbound.c.id, outbound.c.message_id, outbound.c.raw)
                                       .where(outbound.c.message_id.in_(own_ids), outbound.c.kind == "relay",
                                              func.length(outbound.c.raw) > 0)
                                       .order_by(outbound.c.created_at, outbound.c.id))).all()
    seen: set[str] = set()
    for row in copies:
        if row.message_id in seen:
            continue
        seen.add(row.message_id)
        files.append((f"messages/written-as-delivered/{len(seen):04d}-{row.id}.eml", bytes(row.raw)))
    delivered = (await connection.execute(select(outbound.c.id, outbound.c.raw).where(
        _to_them(person), func.length(outbound.c.raw) > 0).order_by(outbound.c.created_at, outbound.c.id))).all()
    files += [(f"messages/to-you/{n:04d}-{row.id}.eml", bytes(row.raw)) for n, row in enumerate(delivered, 1)]

    holds = [_plain(row) | {"reasons": json.loads(row.reasons), "approvals": json.loads(row.approvals)}
             for row in (await connection.execute(select(held).where(held.c.message_id.in_(own_ids)))).all()]
    everyone = (await connection.execute(select(members.c.id).where(members.c.pair_id.in_(person.pair_ids),
                                                                    members.c.id.not_in(person.member_ids)))).scalars()
    others = await eraser_for(connection, list(everyone))
    about = (await connection.execute(select(events_table).where(
        or_(events_table.c.pair_id.in_(person.pair_ids), events_table.c.message_id.in_(own_ids)))
        .order_by(events_table.c.id))).all()
    own = set(own_ids)
    happened = []
    for row in about:
        scrub = others.only_known() if row.message_id in own else others
        happened.append(_plain(row) | {"detail": json.loads(scrub.json_text(row.detail))})
    data = {"address": person.address, "addresses": person.emails,
            "enrolments": await _enrolments(connection, person, domain), "messages_written": listed,
            "held": holds, "events": happened}
    return Export(data, files)


README = """Everything the mentoring relay's store holds about the person with the address {address}.

person.json        enrolments (real name, addresses, handle, alias, settings), their conversations,
                   the messages written (purged ones have no body left), the hold queue's record of
                   them, and the events of those conversations (other people's personal data left out)
messages/written/               each message written, exactly as the relay received it
messages/written-as-delivered/  those messages as they were delivered (names and addresses replaced)
messages/to-you/                the mail the relay delivered to this person
"""


def write_zip(export: Export, target: Path) -> None:
    def fill(handle: int) -> None:
        with os.fdopen(handle, "wb") as out:
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("README.txt", README.format(address=export.data["address"]))
                archive.writestr("person.json", json.dumps(export.data, indent=2, ensure_ascii=False, default=str))
                for name, raw in export.files:
                    archive.writestr(name, raw)
            out.flush()
            os.fsync(out.fileno())

    write_private(target, fill)


async def export_person(engine: AsyncEngine, address: str, target: Path, *, domain: str, now: datetime,
                        actor: str) -> Export:
    """Write the person's export to `target` (0600) and record it."""
    async with engine.connect() as connection:
        person = await find_person(connection, address)
        gathered = await gather(connection, person, domain)
    write_zip(gathered, target)
    async with transaction(engine) as connection:
        await events.record(connection, EXPORT_EVENT, now, actor=actor, members=person.member_ids,
                            pairs=person.pair_ids, **gathered.counts())
    return gathered


# ---- erasure ---------------------------------------------------------------------------------------------

@dataclass
class Erasure:
    person: Person
    erased: Erased
    closed: list[int]  # pairs closed by the erasure
    left: list[int]  # groups and communities they left

    def as_dict(self) -> dict[str, Any]:
        return {"members": self.person.member_ids, "pairs": self.person.pair_ids, "closed": self.closed,
                "left": self.left, **self.erased.counts()}


async def holds_on(connection: AsyncConnection, person: Person) -> dict[int, str]:
    return await held_pairs(connection, person.pair_ids)


async def refusal(connection: AsyncConnection, person: Person, standing: dict[int, str]) -> PersonError:
    kinds = dict((await connection.execute(select(pairs.c.id, pairs.c.kind)
                                           .where(pairs.c.id.in_(list(standing))))).tuples().all())
    named = "; ".join(f"{kinds.get(pair_id, 'pair')} {pair_id}: {reason or 'no reason given'}"
                      for pair_id, reason in sorted(standing.items()))
    return PersonError(f"refused: the record of {person.address} is under legal hold ({named}); nothing was "
                       f"erased. Release the hold (archive release-hold) once it no longer applies.")


@dataclass(frozen=True)
class Scanned:
    """What an erasure reads before its write transaction: the events naming the person
    (erasure.scan_mentions) and the notices naming them to somebody else (erasure.scan_notices)."""

    mentions: erasure.MentionScan | None
    notices: erasure.NoticeScan


def _notices_about(person: Person) -> Any:
    """Where a notice naming the person to somebody else can be: the notices of their conversations (the
    contact exchange's, a coordinator's notice quoting a reason) and those of no conversation (the
    moderators' and coordinators' digests)."""
    return erasure.any_of(outbound, outbound.c.pair_id.in_(person.pair_ids), outbound.c.pair_id.is_(None))


async def scan(engine: AsyncEngine, address: str) -> Scanned | None:
    """What an erasure reads before its write transaction (the events and notices naming the person), so
    that the lock every accept waits for is not held meanwhile. None when nobody has the address (the
    transaction says so)."""
    async with engine.connect() as connection:
        try:
            person = await find_person(connection, address)
        except PersonError:
            return None
        eraser = await eraser_for(connection, person.member_ids)
        return Scanned(await erasure.scan_mentions(connection, eraser),
                       await erasure.scan_notices(connection, eraser.only_known(), _notices_about(person)))


async def _erase(connection: AsyncConnection, person: Person, now: datetime, scanned: Scanned | None) -> Erasure:
    done = Erased()
    ids = person.member_ids
    own = select(messages.c.id).where(messages.c.sender_id.in_(ids))
    eraser = await eraser_for(connection, ids)
    known = eraser.only_known()  # (its pattern compiled once)
    naming = await erasure.naming_notices(connection, known, _notices_about(person),
                                          scanned.notices if scanned is not None else None)
    theirs = erasure.any_of(outbound, outbound.c.message_id.in_(own), _to_them(person), naming)
    await erasure.purge_bodies(connection, done, message_where=messages.c.sender_id.in_(ids), outbound_where=theirs)
    await erasure.scrub_errors(connection, done, eraser, theirs)
    await erasure.scrub_errors(connection, done, known, outbound.c.pair_id.in_(person.pair_ids))
    await erasure.scrub_events(connection, done, eraser, events_table.c.message_id.in_(own))
    elsewhere = events_table.c.message_id.is_(None) | events_table.c.message_id.not_in(own)
    await erasure.scrub_events(connection, done, known,
                               erasure.mentioning(eraser, scanned.mentions if scanned is not None else None)
                               & elsewhere)
    await erasure.scrub_held(connection, done, eraser, held.c.message_id.in_(own))
    await erasure.scrub_held(connection, done, known,
                             held.c.pair_id.in_(person.pair_ids) & held.c.message_id.not_in(own))
    await erasure.drop_edits(connection, done, own)
    closed, left = [], []
    for row in (await connection.execute(select(pairs.c.id, pairs.c.kind).where(
            pairs.c.id.in_(person.pair_ids), pairs.c.status.in_(OPEN)))).all():
        if row.kind == "pair":
            if await close_conversation(connection, row.id, now):
                closed.append(row.id)
        else:
            left.append(row.id)
    if left:
        await connection.execute(update(members).where(members.c.id.in_(ids), members.c.pair_id.in_(left),
                                                       members.c.left_at.is_(None)).values(left_at=now))
    await erasure.erase_members(connection, done, ids)
    return Erasure(person, done, closed, left)


async def preview_erasure(engine: AsyncEngine, address: str, now: datetime) -> Erasure:
    """What `person erase` would do (the erasure itself, rolled back); PersonError under legal hold."""
    scanned = await scan(engine, address)
    async with engine.connect() as connection:
        writer = await connection.execution_options(write=True)
        pending = await writer.begin()
        try:
            await take_write_lock(writer)
            person = await find_person(writer, address)
            standing = await holds_on(writer, person)
            if standing:
                raise await refusal(writer, person, standing)
            return await _erase(writer, person, now, scanned)
        finally:
            await pending.rollback()


async def _tell_the_others(connection: AsyncConnection, settings: Settings, person: Person,
                             now: datetime) -> None:
    """The partner in each of the person's open pairs gets the farewell, before the pair is closed; the
    other members of each open group they are a mentor of are told that the mentor has left."""
    for pair_id in person.pair_ids:
        pair = await get_pair(connection, pair_id)
        if pair is None:
            await _mentor_leaves(connection, settings, person, pair_id, now)
            continue
        program = settings.programs.get(pair.program_id)
        if program is None or pair.status not in OPEN:
            continue
        for item in farewells(settings, program, pair, now, exchange=False):
            if pair.member(item.to_role).id not in person.member_ids:
                await send_planned(connection, settings, item, now, now, attach_conversation=False)


async def _mentor_leaves(connection: AsyncConnection, settings: Settings, person: Person, group_id: int,
                         now: datetime) -> None:
    group = await get_conversation(connection, group_id)
    if group is None or group.kind != "group" or group.status not in OPEN:
        return
    for member in group.members:
        if member.id in person.member_ids and member.role == "mentor" and member.left_at is None:
            await mentor_left(connection, settings, group, member, now)


async def erase_person(settings: Settings, engine: AsyncEngine, address: str, now: datetime,
                       actor: str, *, scanned: Scanned | None = None) -> Erasure:
    """Erase the person (one transaction) and record it; PersonError when nobody has the address or a
    legal hold stands on one of their conversations. `scanned`: the read made before the transaction
    (`scan`), made here when not given."""
    scanned = scanned if scanned is not None else await scan(engine, address)
    async with erasure.erasing_transaction(engine) as connection:
        person = await find_person(connection, address)  # under the writers' lock: every event committed is seen
        standing = await holds_on(connection, person)
        if standing:
            raise await refusal(connection, person, standing)
        await _tell_the_others(connection, settings, person, now)
        done = await _erase(connection, person, now, scanned)
        for pair_id in done.closed:
            await events.record(connection, "pair_closed", now, actor=actor, pair_id=pair_id, reason="person erased")
        await events.record(connection, ERASE_EVENT, now, actor=actor, members=person.member_ids,
                            pairs=person.pair_ids, closed=done.closed, left=done.left, **done.erased.detail())
    await erasure.checkpoint(engine)
    return done
