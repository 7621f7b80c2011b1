"""Conversations and their members: a conversation has members with roles; a pair is a conversation of
two (one mentor, one mentee: relay/store/pairs.py), a group has one or two mentors and several mentees.

Every conversation is a row of the table `pairs` (the name is kept; `pair_id` columns everywhere name
the conversation), with `kind` pair | group. A member row is one person in one conversation: their real
address and name, their handle, and their own alias. In a pair, mail to a member's alias reaches that
member from their partner; in a group, the group's alias (pairs.alias) reaches every other member, and
a member's alias reaches that member alone from any other member of the group (a private word).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.outbound import settle_unsent
from relay.store.schema import ENDED as ENDED  # the statuses, for the modules that read a conversation's
from relay.store.schema import PAUSED as PAUSED
from relay.store.schema import member_addresses, members, pairs

ROLES = ("mentor", "mentee")
KINDS = ("pair", "group", "community")


@dataclass(frozen=True)
class Member:
    id: int
    pair_id: int  # the conversation
    program_id: str
    role: str
    email: str
    email_key: str
    name: str
    handle: str
    alias: str  # local part only
    timezone: str | None
    away_until: str | None = None  # YYYY-MM-DD: away through that day
    contact_consent: str | None = None  # yes | no (relay/inbound/program/exchange.py)
    cadence: str | None = None  # a mentor's writing days, e.g. "mon,thu" (relay/nudges/rules/cadence.py)
    nicknames: tuple[str, ...] = ()  # known nicknames, scrubbed like the name
    language: str | None = None  # BCP 47 tag; None: the program's language
    digest: str | None = None  # each | daily | weekly (digest@); None: the program's default
    left_at: datetime | None = None  # a community member no longer enrolled (relay/communities.py)
    other_emails: tuple[str, ...] = ()  # further addresses they may write from (`pair address add`)

    def alias_address(self, domain: str) -> str:
        return f"{self.alias}@{domain}"

    def writes_from(self, address: str) -> bool:
        """Whether mail from `address` is this member's: their primary address or one of the others."""
        key = email_key(address)
        return key == self.email_key or any(key == email_key(other) for other in self.other_emails)


@dataclass(frozen=True)
class Conversation:
    """A conversation and its members (in the order they joined)."""

    id: int
    program_id: str
    policy: str | None
    status: str
    end_date: str | None
    created_at: datetime
    closed_at: datetime | None
    members: tuple[Member, ...] = ()
    kind: str = "pair"
    name: str | None = None  # a group's name
    alias: str | None = None  # a group's alias local part

    @property
    def is_group(self) -> bool:
        return self.kind != "pair"

    @property
    def mentors(self) -> tuple[Member, ...]:
        return self.with_role("mentor")

    @property
    def mentees(self) -> tuple[Member, ...]:
        return self.with_role("mentee")

    def with_role(self, role: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.role == role)

    def member_by_id(self, member_id: int | None) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def member_by_email(self, address: str) -> Member | None:
        return next((m for m in self.members if m.writes_from(address)), None)

    def others(self, member: Member) -> tuple[Member, ...]:
        """Everyone in the conversation but `member`: who receives what `member` writes to the group (a
        community member who left the program receives nothing)."""
        return tuple(m for m in self.members if m.id != member.id and m.left_at is None)

    def alias_address(self, domain: str) -> str | None:
        """A group's own address (a pair has none: each member's alias is the pair's address for them)."""
        return f"{self.alias}@{domain}" if self.alias else None


def email_key(address: str) -> str:
    return address.casefold()


def writes_as(address: str) -> Any:
    """A WHERE clause on `members`: the member rows whose person writes from `address` (their primary
    address or one added with `pair address add`)."""
    key = email_key(address)
    # `id IN` a union of two indexed reads: under an OR, PostgreSQL uses no index with a subquery's IN
    return members.c.id.in_(union_all(select(members.c.id).where(members.c.email_key == key),
                                      select(member_addresses.c.member_id).where(member_addresses.c.email_key == key)))


async def current_addresses(connection: AsyncConnection, conversation_ids: list[int]) -> dict[int, set[str]]:
    """Each conversation's members' addresses as they are now (email_key; members who left not), for a writer
    that queues mail to an address it read earlier: in its write transaction, under the writers' lock
    (relay/store/database.take_write_lock), an erasure is either committed and seen here, or waits and then cancels what
    the writer queued."""
    found: dict[int, set[str]] = {conversation_id: set() for conversation_id in conversation_ids}
    if conversation_ids:
        rows = await connection.execute(select(members.c.pair_id, members.c.email_key).where(
            members.c.pair_id.in_(conversation_ids), members.c.left_at.is_(None)))
        for conversation_id, key in rows:
            found[conversation_id].add(key)
    return found


async def other_emails(connection: AsyncConnection, member_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Each member's further addresses (one query)."""
    if not member_ids:
        return {}
    found: dict[int, list[str]] = {}
    for row in (await connection.execute(
            select(member_addresses.c.member_id, member_addresses.c.email)
            .where(member_addresses.c.member_id.in_(member_ids)).order_by(member_addresses.c.id))).all():
        found.setdefault(row.member_id, []).append(row.email)
    return {member_id: tuple(addresses) for member_id, addresses in found.items()}


async def with_other_emails(connection: AsyncConnection, people: list[Member]) -> list[Member]:
    extra = await other_emails(connection, [m.id for m in people])
    return [replace(m, other_emails=extra[m.id]) if m.id in extra else m for m in people]


def handle_key(handle: str) -> str:
    return " ".join(handle.split()).casefold()


async def handle_taken(connection: AsyncConnection, program_id: str, handle: str, email: str | None = None) -> bool:
    """Whether the handle belongs to someone else in the program (one person may keep their handle in
    several conversations of a program: a pair and a group, say)."""
    query = select(func.count()).select_from(members).where(
        members.c.program_id == program_id, members.c.handle_key == handle_key(handle))
    if email is not None:
        query = query.where(members.c.email_key != email_key(email))
    return bool((await connection.execute(query)).scalar_one())


async def alias_taken(connection: AsyncConnection, alias: str) -> bool:
    """Whether a local part is some member's alias or some group's alias."""
    for query in (select(func.count()).select_from(members).where(members.c.alias == alias),
                  select(func.count()).select_from(pairs).where(pairs.c.alias == alias)):
        if (await connection.execute(query)).scalar_one():
            return True
    return False


async def insert_conversation(connection: AsyncConnection, *, program_id: str, kind: str, policy: str | None,
                              created_at: datetime, end_date: str | None = None, name: str | None = None,
                              alias: str | None = None) -> int:
    result = await connection.execute(pairs.insert().values(
        program_id=program_id, kind=kind, name=name, alias=alias, policy=policy, status="active",
        end_date=end_date, created_at=created_at))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


async def insert_member(connection: AsyncConnection, conversation_id: int, program_id: str, role: str,
                        person: dict[str, Any]) -> int:
    """One person in a conversation (person: email, name, handle, alias, and optionally timezone,
    cadence, language)."""
    result = await connection.execute(members.insert().values(
        pair_id=conversation_id, program_id=program_id, role=role, email=person["email"],
        email_key=email_key(person["email"]), name=person["name"], handle=person["handle"],
        handle_key=handle_key(person["handle"]), alias=person["alias"], timezone=person.get("timezone"),
        cadence=person.get("cadence"), language=person.get("language"),
        nicknames=json.dumps(list(person["nicknames"])) if person.get("nicknames") else None,
    ))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def member_of(row: Any) -> Member:
    return Member(
        id=row.id, pair_id=row.pair_id, program_id=row.program_id, role=row.role, email=row.email,
        email_key=row.email_key, name=row.name, handle=row.handle, alias=row.alias, timezone=row.timezone,
        away_until=row.away_until, contact_consent=row.contact_consent, cadence=row.cadence,
        nicknames=tuple(json.loads(row.nicknames)) if row.nicknames else (), language=row.language,
        digest=row.digest, left_at=row.left_at,
    )


def conversation_of(row: Any, people: list[Member]) -> Conversation:
    """A conversation from its `pairs` row and its members: a Pair when it is one (relay/store/pairs.py)."""
    if row.kind == "pair":
        from relay.store.pairs import pair_of  # pairs.py builds on this module

        return pair_of(row, people)
    return Conversation(id=row.id, program_id=row.program_id, policy=row.policy, status=row.status,
                        end_date=row.end_date, created_at=row.created_at, closed_at=row.closed_at,
                        members=tuple(people), kind=row.kind, name=row.name, alias=row.alias)


async def with_members(connection: AsyncConnection, rows: list[Any]) -> list[Conversation]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    member_rows = (await connection.execute(
        select(members).where(members.c.pair_id.in_(ids)).order_by(members.c.id))).all()
    by_conversation: dict[int, list[Member]] = {}
    for member in await with_other_emails(connection, [member_of(row) for row in member_rows]):
        by_conversation.setdefault(member.pair_id, []).append(member)
    return [conversation_of(row, by_conversation.get(row.id, [])) for row in rows]


async def get_conversation(connection: AsyncConnection, conversation_id: int) -> Conversation | None:
    rows = (await connection.execute(select(pairs).where(pairs.c.id == conversation_id))).all()
    found = await with_members(connection, list(rows))
    return found[0] if found else None


async def conversations_by_id(connection: AsyncConnection, ids: list[int]) -> list[Conversation]:
    """The conversations with these ids, by id, in one query for them and one for their members."""
    if not ids:
        return []
    query = select(pairs).where(pairs.c.id.in_(ids)).order_by(pairs.c.id)
    return await with_members(connection, list((await connection.execute(query)).all()))


async def list_conversations(connection: AsyncConnection, program_id: str | None = None,
                             kind: str | None = None) -> list[Conversation]:
    query = select(pairs).order_by(pairs.c.id)
    if program_id is not None:
        query = query.where(pairs.c.program_id == program_id)
    if kind is not None:
        query = query.where(pairs.c.kind == kind)
    return await with_members(connection, list((await connection.execute(query)).all()))


async def find_group_address(connection: AsyncConnection, local_part: str) -> tuple[Conversation, Member | None] | None:
    """The group a local part belongs to: its own alias (recipient None: every other member) or a
    member's alias (that member alone)."""
    key = local_part.casefold()
    owner = select(members.c.pair_id).where(members.c.alias == key).scalar_subquery()
    rows = (await connection.execute(select(pairs).where(
        pairs.c.kind != "pair", or_(pairs.c.alias == key, pairs.c.id == owner)))).all()
    found = await with_members(connection, list(rows))
    if not found:
        return None
    group = found[0]
    return group, next((m for m in group.members if m.alias == key), None)


async def status_of(connection: AsyncConnection, conversation_id: int) -> str | None:
    """The conversation's status as it is now (None: no such conversation), for a writer that decided on an
    earlier read: in its write transaction, a pause or a close is either committed and seen here, or waits."""
    return (await connection.execute(select(pairs.c.status).where(pairs.c.id == conversation_id))).scalar()


async def close_conversation(connection: AsyncConnection, conversation_id: int, at: datetime) -> bool:
    """Close it; its members' copies not sent yet are delivered, or withheld if a concern had paused it
    (relay.store.outbound.settle_unsent). Mail written after the close is archived, not delivered."""
    before = await status_of(connection, conversation_id)
    result = await connection.execute(
        pairs.update().where(pairs.c.id == conversation_id, pairs.c.status != "closed")
        .values(status="closed", closed_at=at))
    if result.rowcount:
        await settle_unsent(connection, conversation_id, at, "closed", paused=before == PAUSED)
    return bool(result.rowcount)
