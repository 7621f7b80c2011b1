"""Pairs and their two members: enrolment rows, alias lookups, closing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.schema import members, pairs

ROLES = ("mentor", "mentee")


@dataclass(frozen=True)
class Member:
    id: int
    pair_id: int
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

    def alias_address(self, domain: str) -> str:
        return f"{self.alias}@{domain}"


@dataclass(frozen=True)
class Pair:
    id: int
    program_id: str
    policy: str | None
    status: str
    end_date: str | None
    created_at: datetime
    closed_at: datetime | None
    mentor: Member
    mentee: Member

    def member(self, role: str) -> Member:
        return self.mentor if role == "mentor" else self.mentee

    def partner_of(self, member: Member) -> Member:
        return self.mentee if member.role == "mentor" else self.mentor


def email_key(address: str) -> str:
    return address.casefold()


def handle_key(handle: str) -> str:
    return " ".join(handle.split()).casefold()


async def handle_taken(connection: AsyncConnection, program_id: str, handle: str) -> bool:
    query = select(func.count()).select_from(members).where(
        members.c.program_id == program_id, members.c.handle_key == handle_key(handle)
    )
    return bool((await connection.execute(query)).scalar_one())


async def alias_taken(connection: AsyncConnection, alias: str) -> bool:
    query = select(func.count()).select_from(members).where(members.c.alias == alias)
    return bool((await connection.execute(query)).scalar_one())


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
    result = await connection.execute(
        pairs.insert().values(
            program_id=program_id, policy=policy, status="active", end_date=end_date, created_at=created_at
        )
    )
    assert result.inserted_primary_key is not None
    pair_id = int(result.inserted_primary_key[0])
    for role in ROLES:
        person = people[role]
        await connection.execute(
            members.insert().values(
                pair_id=pair_id,
                program_id=program_id,
                role=role,
                email=person["email"],
                email_key=email_key(person["email"]),
                name=person["name"],
                handle=person["handle"],
                handle_key=handle_key(person["handle"]),
                alias=person["alias"],
                timezone=person.get("timezone"),
                cadence=person.get("cadence"),
            )
        )
    return pair_id


def _member(row: Any) -> Member:
    return Member(
        id=row.id,
        pair_id=row.pair_id,
        program_id=row.program_id,
        role=row.role,
        email=row.email,
        email_key=row.email_key,
        name=row.name,
        handle=row.handle,
        alias=row.alias,
        timezone=row.timezone,
        away_until=row.away_until,
        contact_consent=row.contact_consent,
        cadence=row.cadence,
    )


async def _pairs_with_members(connection: AsyncConnection, pair_rows: list[Any]) -> list[Pair]:
    if not pair_rows:
        return []
    ids = [row.id for row in pair_rows]
    member_rows = (await connection.execute(select(members).where(members.c.pair_id.in_(ids)))).all()
    by_pair: dict[int, dict[str, Member]] = {}
    for row in member_rows:
        by_pair.setdefault(row.pair_id, {})[row.role] = _member(row)
    return [
        Pair(
            id=row.id,
            program_id=row.program_id,
            policy=row.policy,
            status=row.status,
            end_date=row.end_date,
            created_at=row.created_at,
            closed_at=row.closed_at,
            mentor=by_pair[row.id]["mentor"],
            mentee=by_pair[row.id]["mentee"],
        )
        for row in pair_rows
    ]


async def get_pair(connection: AsyncConnection, pair_id: int) -> Pair | None:
    rows = (await connection.execute(select(pairs).where(pairs.c.id == pair_id))).all()
    found = await _pairs_with_members(connection, list(rows))
    return found[0] if found else None


async def list_pairs(connection: AsyncConnection, program_id: str | None = None) -> list[Pair]:
    query = select(pairs).order_by(pairs.c.id)
    if program_id is not None:
        query = query.where(pairs.c.program_id == program_id)
    return await _pairs_with_members(connection, list((await connection.execute(query)).all()))


async def count_pairs(connection: AsyncConnection) -> int:
    return int((await connection.execute(select(func.count()).select_from(pairs))).scalar_one())


async def find_by_alias(connection: AsyncConnection, local_part: str) -> tuple[Pair, Member] | None:
    """The pair an alias belongs to, and the member the alias delivers to (one query: it runs per RCPT)."""
    addressed = members.alias("addressed")
    query = (
        select(members, pairs.c.policy, pairs.c.status, pairs.c.end_date, pairs.c.created_at, pairs.c.closed_at,
               (members.c.id == addressed.c.id).label("is_addressed"))
        .select_from(addressed.join(members, members.c.pair_id == addressed.c.pair_id)
                     .join(pairs, pairs.c.id == addressed.c.pair_id))
        .where(addressed.c.alias == local_part.casefold())
    )
    rows = (await connection.execute(query)).all()
    if len(rows) != 2:
        return None
    by_role = {row.role: _member(row) for row in rows}
    first = rows[0]
    pair = Pair(id=first.pair_id, program_id=first.program_id, policy=first.policy, status=first.status,
                end_date=first.end_date, created_at=first.created_at, closed_at=first.closed_at,
                mentor=by_role["mentor"], mentee=by_role["mentee"])
    target = next(row for row in rows if row.is_addressed)
    return pair, pair.member(target.role)


async def close_pair(connection: AsyncConnection, pair_id: int, at: datetime) -> bool:
    result = await connection.execute(
        pairs.update().where(pairs.c.id == pair_id, pairs.c.status != "closed").values(status="closed", closed_at=at)
    )
    return bool(result.rowcount)
