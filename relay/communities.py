"""Program communities: mentors@ reaches the other enrolled mentors of the sender's programs, mentees@ the
other mentees (program key `community: {mentors, mentees, digest}`), handles only, like a group.

A community is a conversation of kind `community` per program and side (pairs.alias `mentors.<program>`
or `mentees.<program>`, so a reply to a copy stays inside that program's community), whose member rows
are the program's enrolled mentors (or mentees): one row per person, handle, name and address from
their latest enrolment of that side in the program.

Why member rows (materialised) and not recipients computed at send time: everything a group message
writes hangs on member ids — the archived sender, thread ids mapped per recipient, outbound copies, a
member's own digest choice and their private alias — so a community reuses the group code path
unchanged (relay/inbound/group.py, relay/fanout.py, the hold queue's release). The rows are kept in
step with enrolment by `sync`, which reconciles them with the program's active pairs and groups right
before they are used (RCPT of mentors@/mentees@, digest@, the digest sweep): a person newly enrolled
joins, a person whose pairs and groups all ended leaves (`left_at`; the row stays for the record and
`Conversation.others` skips it). Reconciling at the point of use cannot miss an enrolment change made
by any command (pair create/close, group add/close, program end, a sweep ending pairs) and needs no
hook in each of them; its cost is two small queries per community message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import ids
from relay.archive.erasure import ERASED_DOMAIN
from relay.config import ProgramConfig, Settings
from relay.store.conversations import (
    Conversation,
    Member,
    alias_taken,
    email_key,
    get_conversation,
    insert_conversation,
    insert_member,
)
from relay.store.schema import member_addresses, members, pairs

SIDES = {"mentors": "mentor", "mentees": "mentee"}  # community address local part -> members' role
ENROLLED = ("active", "paused")  # statuses of a pair or group whose members count as enrolled


@dataclass(frozen=True)
class Side:
    local: str  # mentors | mentees
    role: str  # mentor | mentee


SIDE_OF = {local: Side(local, role) for local, role in SIDES.items()}


def side_of(local_part: str) -> Side | None:
    role = SIDES.get(local_part.casefold())
    return Side(local_part.casefold(), role) if role else None


def enabled(program: ProgramConfig, side: Side) -> bool:
    return program.community.mentors if side.role == "mentor" else program.community.mentees


def community_alias(side: Side, program_id: str) -> str:
    return f"{side.local}.{program_id}"


def side_of_community(conversation: Conversation) -> Side | None:
    if conversation.kind != "community" or not conversation.alias:
        return None
    return side_of(conversation.alias.split(".", 1)[0])


async def programs_of(connection: AsyncConnection, address: str, role: str) -> list[str]:
    """The programs where `address` is enrolled with `role` in an active pair or group."""
    query = (select(members.c.program_id).distinct()
             .select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
             .where(members.c.email_key == email_key(address), members.c.role == role,
                    pairs.c.kind.in_(("pair", "group")), pairs.c.status.in_(ENROLLED))
             .order_by(members.c.program_id))
    return list((await connection.execute(query)).scalars())


async def enrolled_anywhere(connection: AsyncConnection, address: str) -> bool:
    query = (select(members.c.id).select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
             .where(members.c.email_key == email_key(address), pairs.c.kind.in_(("pair", "group")),
                    pairs.c.status.in_(ENROLLED)).limit(1))
    return (await connection.execute(query)).first() is not None


async def sync(connection: AsyncConnection, settings: Settings, program_id: str, side: Side,
               now: datetime) -> Conversation | None:
    """The program's community of that side with its members reconciled with enrolment (None when the
    program does not enable it). Runs inside the caller's write transaction."""
    program = settings.programs.get(program_id)
    if program is None or not enabled(program, side):
        return None
    community_id = await _community_id(connection, program, side, now)
    enrolled_rows = (await connection.execute(
        select(members).select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
        .where(pairs.c.program_id == program_id, pairs.c.kind.in_(("pair", "group")),
               pairs.c.status.in_(ENROLLED), members.c.role == side.role)
        .order_by(members.c.id))).all()
    latest = {row.email_key: row for row in enrolled_rows}  # a person's latest enrolment of that side
    current = {row.email_key: row for row in (await connection.execute(
        select(members).where(members.c.pair_id == community_id))).all()}
    for key, row in latest.items():
        mine = current.get(key)
        if mine is None:
            choice = (await connection.execute(
                select(members.c.digest).where(members.c.email_key == key, members.c.digest.is_not(None))
                .order_by(members.c.id.desc()).limit(1))).scalar()
            person = {"email": row.email, "name": row.name, "handle": row.handle, "timezone": row.timezone,
                      "language": row.language, "alias": await _free_alias(connection, row.handle),
                      "nicknames": tuple(json.loads(row.nicknames)) if row.nicknames else ()}
            member_id = await insert_member(connection, community_id, program_id, side.role, person)
            if choice:
                await connection.execute(update(members).where(members.c.id == member_id).values(digest=choice))
        elif mine.left_at is not None or (mine.handle, mine.name, mine.timezone) != (row.handle, row.name,
                                                                                   row.timezone):
            await connection.execute(update(members).where(members.c.id == mine.id).values(
                left_at=None, handle=row.handle, handle_key=row.handle_key, name=row.name, timezone=row.timezone))
    gone = [row.id for key, row in current.items() if key not in latest and row.left_at is None]
    if gone:
        await connection.execute(update(members).where(members.c.id.in_(gone)).values(left_at=now))
    return await get_conversation(connection, community_id)


async def communities_for(connection: AsyncConnection, settings: Settings, address: str, side: Side,
                          now: datetime) -> list[Conversation]:
    """The communities of that side `address` belongs to: one per program where they are enrolled with
    the side's role and the program enables that community (synced)."""
    found = []
    for program_id in await programs_of(connection, address, side.role):
        community = await sync(connection, settings, program_id, side, now)
        if community is not None and community.status == "active":
            found.append(community)
    return found


async def _community_id(connection: AsyncConnection, program: ProgramConfig, side: Side, now: datetime) -> int:
    alias = community_alias(side, program.id)
    query = select(pairs.c.id).where(pairs.c.kind == "community", pairs.c.alias == alias)
    found = (await connection.execute(query)).scalar()
    if found is not None:
        return int(found)
    name = f"{program.name} {side.local}"
    try:
        async with connection.begin_nested():  # another instance may create it at the same moment
            return await insert_conversation(connection, program_id=program.id, kind="community", policy=None,
                                             created_at=now, name=name, alias=alias)
    except IntegrityError:
        return int((await connection.execute(query)).scalar_one())


async def _free_alias(connection: AsyncConnection, handle: str) -> str:
    for _ in range(20):
        alias = ids.alias_local_part(handle)
        if not await alias_taken(connection, alias):
            return alias
    raise RuntimeError("no free alias found for a community member")


async def bystanders(connection: AsyncConnection, conversation: Conversation, sender_key: str) -> tuple[Member, ...]:
    """`read_bystanders` on the async engine."""
    return await connection.run_sync(read_bystanders, conversation, sender_key)


def read_bystanders(connection: Connection, conversation: Conversation, sender_key: str) -> tuple[Member, ...]:
    """The people the sender knows through the program who are not members of `conversation`. They receive
    nothing, but a mentor may well name one mentee to another or to a group, a group mentee their pair mentor
    to the group, so their identities (names, nicknames, every address they write from) are scrubbed from the
    copies like the members'. A person is taken from their latest enrolment: their handle and that
    conversation's alias stand in for them; erased people are left out.

    For a pair or a group: the members of every other pair and group the sender is (or was) a member of, in
    any program. For a community: everyone enrolled, now or before, in the programs the sender is enrolled
    in (a mentor may quote their mentee to fellow mentors). Not everyone in the program for a pair or a
    group: that read, and the identities taken to the worker and matched, cost some 25 µs of CPU per
    program member for every message (400 members: some 10 ms, as much as the rest of a message's work;
    bench/name_matcher.py, docs/privacy.md), where the sender's own conversations are a handful of people."""
    m = members.c
    if conversation.kind == "community":
        programs = select(m.program_id).where(m.email_key == sender_key).scalar_subquery()
        scope = pairs.c.program_id.in_(programs)
    else:
        scope = m.pair_id.in_(select(m.pair_id).where(m.email_key == sender_key).scalar_subquery())
    rows = connection.execute(  # one statement, the columns used only: it runs for every message
        select(m.id, m.pair_id, m.program_id, m.role, m.email, m.email_key, m.name, m.handle, m.alias,
               m.timezone, m.nicknames, m.language, member_addresses.c.email)
        .select_from(members.join(pairs, pairs.c.id == m.pair_id)
                     .outerjoin(member_addresses, member_addresses.c.member_id == m.id))
        .where(scope, pairs.c.kind.in_(("pair", "group")),
               m.email_key.not_like(f"%@{ERASED_DOMAIN}"))  # erased: nothing of them is left to scrub
        .order_by(m.id.desc(), member_addresses.c.id)).all()
    inside = {member.email_key for member in conversation.members}
    found: dict[str, Member] = {}
    extra: dict[str, dict[str, None]] = {}  # further addresses, from any of a person's enrolments
    for (member_id, pair_id, program_id, role, email, key, name, handle, alias, timezone, nicknames, language,
         other) in rows:
        if key in inside:
            continue
        if key not in found:
            found[key] = Member(id=member_id, pair_id=pair_id, program_id=program_id, role=role, email=email,
                                email_key=key, name=name, handle=handle, alias=alias, timezone=timezone,
                                nicknames=tuple(json.loads(nicknames)) if nicknames else (), language=language)
        if other is not None and email_key(other) != key:
            extra.setdefault(key, {})[other] = None
    return tuple(replace(member, other_emails=tuple(extra[key])) if key in extra else member
                 for key, member in found.items())
