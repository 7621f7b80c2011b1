"""Pairs: the conversation of two (one mentor, one mentee) — enrolment rows, alias lookups, closing.

A Pair is a Conversation (relay/store/conversations.py) with `mentor` and `mentee` by name; everything
that serves any conversation takes a Conversation, what only makes sense for two takes a Pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.conversations import (
    ROLES,
    Conversation,
    Member,
    alias_taken,
    close_conversation,
    email_key,
    handle_key,
    handle_taken,
    insert_conversation,
    insert_member,
    member_of,
    with_members,
)
from relay.store.schema import member_addresses, members, pairs

__all__ = ["ROLES", "Member", "Pair", "alias_taken", "close_pair", "count_pairs", "email_key", "find_by_alias",
           "get_pair", "handle_key", "handle_taken", "insert_pair", "list_pairs"]


@dataclass(frozen=True)
class Pair(Conversation):
    mentor: Member = field(kw_only=True)
    mentee: Member = field(kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", (self.mentor, self.mentee))
        object.__setattr__(self, "kind", "pair")

    def member(self, role: str) -> Member:
        return self.mentor if role == "mentor" else self.mentee

    def partner_of(self, member: Member) -> Member:
        return self.mentee if member.role == "mentor" else self.mentor


def pair_of(row: Any, people: list[Member]) -> Pair:
    by_role = {m.role: m for m in people}
    return Pair(id=row.id, program_id=row.program_id, policy=row.policy, status=row.status, end_date=row.end_date,
                created_at=row.created_at, closed_at=row.closed_at, mentor=by_role["mentor"],
                mentee=by_role["mentee"])


async def insert_pair(
    connection: AsyncConnection,
    *,
    program_id: str,
    policy: str | None,
    end_date: str | None,
    created_at: datetime,
    people: dict[str, dict[str, Any]],
) -> int:
    """Insert a pair and its members (people: role -> email, name, handle, alias, timezone)."""
    pair_id = await insert_conversation(connection, program_id=program_id, kind="pair", policy=policy,
                                        end_date=end_date, created_at=created_at)
    for role in ROLES:
        await insert_member(connection, pair_id, program_id, role, people[role])
    return pair_id


async def get_pair(connection: AsyncConnection, pair_id: int) -> Pair | None:
    """The pair with this id (None for a group: see relay/store/conversations.get_conversation)."""
    rows = (await connection.execute(select(pairs).where(pairs.c.id == pair_id, pairs.c.kind == "pair"))).all()
    found = await with_members(connection, list(rows))
    return found[0] if found and isinstance(found[0], Pair) else None


async def list_pairs(connection: AsyncConnection, program_id: str | None = None) -> list[Pair]:
    query = select(pairs).where(pairs.c.kind == "pair").order_by(pairs.c.id)
    if program_id is not None:
        query = query.where(pairs.c.program_id == program_id)
    found = await with_members(connection, list((await connection.execute(query)).all()))
    return [pair for pair in found if isinstance(pair, Pair)]


async def pairs_by_id(connection: AsyncConnection, ids: list[int]) -> list[Pair]:
    """The pairs with these ids, by id, in one query for the pairs and one for their members."""
    if not ids:
        return []
    query = select(pairs).where(pairs.c.kind == "pair", pairs.c.id.in_(ids)).order_by(pairs.c.id)
    found = await with_members(connection, list((await connection.execute(query)).all()))
    return [pair for pair in found if isinstance(pair, Pair)]


def _pairs_where(query: Any, programs: list[str] | None, program_id: str | None, status: str | None) -> Any:
    query = query.where(pairs.c.kind == "pair")
    if programs is not None:
        query = query.where(pairs.c.program_id.in_(programs))
    if program_id is not None:
        query = query.where(pairs.c.program_id == program_id)
    if status is not None:
        query = query.where(pairs.c.status == status)
    return query


async def pairs_page(connection: AsyncConnection, *, programs: list[str] | None = None,
                     program_id: str | None = None, status: str | None = None, limit: int = 50,
                     after: int = 0) -> tuple[list[Pair], int | None]:
    """One page of pairs by id after `after` (keyset), filtered in SQL (`programs`: those the reader may
    see, None: all): the pairs in one query, their members in one more. Returns the pairs and the id to
    continue after (None on the last page)."""
    query = _pairs_where(select(pairs), programs, program_id, status).where(pairs.c.id > after)
    rows = list((await connection.execute(query.order_by(pairs.c.id).limit(limit + 1))).all())
    following = rows[limit - 1].id if len(rows) > limit else None
    found = await with_members(connection, rows[:limit])
    return [pair for pair in found if isinstance(pair, Pair)], following


async def count_matching(connection: AsyncConnection, *, programs: list[str] | None = None,
                         program_id: str | None = None, status: str | None = None) -> int:
    query = _pairs_where(select(func.count()).select_from(pairs), programs, program_id, status)
    return int((await connection.execute(query)).scalar_one())


async def count_pairs(connection: AsyncConnection) -> int:
    query = select(func.count()).select_from(pairs).where(pairs.c.kind == "pair")
    return int((await connection.execute(query)).scalar_one())


_ADDRESSED = members.alias("addressed")
# Built once: it runs per RCPT, and building a select with an alias costs more than running it. One row per
# member and further address (a member without one: one row, other_email NULL), in the addresses' order.
_BY_ALIAS = (
    select(members, pairs.c.policy, pairs.c.status, pairs.c.end_date, pairs.c.created_at, pairs.c.closed_at,
           (members.c.id == _ADDRESSED.c.id).label("is_addressed"),
           member_addresses.c.email.label("other_email"))
    .select_from(_ADDRESSED.join(members, members.c.pair_id == _ADDRESSED.c.pair_id)
                 .join(pairs, pairs.c.id == _ADDRESSED.c.pair_id)
                 .outerjoin(member_addresses, member_addresses.c.member_id == members.c.id))
    .where(_ADDRESSED.c.alias == bindparam("alias"), pairs.c.kind == "pair")
    .order_by(members.c.id, member_addresses.c.id)
)


async def find_by_alias(connection: AsyncConnection, local_part: str) -> tuple[Pair, Member] | None:
    """The pair an alias belongs to, and the member the alias delivers to (one query: it runs per RCPT).
    None for an alias of a group (relay/store/conversations.find_group_address)."""
    return await connection.run_sync(read_by_alias, local_part)


def read_by_alias(connection: Connection, local_part: str) -> tuple[Pair, Member] | None:
    """`find_by_alias` on a sync connection (relay/store/reads.py: intake's lookup, one hop to a thread)."""
    rows = connection.execute(_BY_ALIAS, {"alias": local_part.casefold()}).all()
    people: dict[int, Member] = {}
    others: dict[int, list[str]] = {}
    addressed_role = None
    for row in rows:
        if row.id not in people:
            people[row.id] = member_of(row)
            if row.is_addressed:
                addressed_role = row.role
        if row.other_email is not None:
            others.setdefault(row.id, []).append(row.other_email)
    if len(people) != 2 or addressed_role is None:
        return None
    by_role = {m.role: replace(m, other_emails=tuple(others[m.id])) if m.id in others else m
               for m in people.values()}
    first = rows[0]
    pair = Pair(id=first.pair_id, program_id=first.program_id, policy=first.policy, status=first.status,
                end_date=first.end_date, created_at=first.created_at, closed_at=first.closed_at,
                mentor=by_role["mentor"], mentee=by_role["mentee"])
    return pair, pair.member(addressed_role)


async def close_pair(connection: AsyncConnection, pair_id: int, at: datetime) -> bool:
    return await close_conversation(connection, pair_id, at)
