"""Enrolling pairs: validate people and handles, mint aliases, write the pair and its event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from relay import ids
from relay.clock import Clock
from relay.config import Settings
from relay.nudges.rules.cadence import parse_cadence
from relay.nudges.welcome import queue_welcome
from relay.store import events
from relay.store.database import transaction
from relay.store.pairs import ROLES, Pair, alias_taken, get_pair, handle_key, handle_taken, insert_pair
from relay.store.pairs import close_pair as close_pair_row


class EnrolmentError(Exception):
    """A problem with what the admin asked for, worded for the admin."""


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    handle: str
    timezone: str | None = None
    nicknames: tuple[str, ...] = ()


def normalise_email(address: str, check_deliverability: bool) -> str:
    try:
        return validate_email(address, check_deliverability=check_deliverability).normalized
    except EmailNotValidError as exc:
        raise EnrolmentError(f"{address!r} is not a usable email address: {exc}") from None


def check_person(role: str, person: Person, check_deliverability: bool) -> Person:
    name = " ".join(person.name.split())
    handle = " ".join(person.handle.split())
    if not name:
        raise EnrolmentError(f"the {role}'s real name is empty")
    if not handle or len(handle) > 40:
        raise EnrolmentError(f"the {role}'s handle must be 1 to 40 characters")
    if "@" in handle or "<" in handle or ">" in handle:
        raise EnrolmentError(f"the {role}'s handle may not contain @, < or >")
    handle_words = set(re.findall(r"\w+", handle_key(handle)))
    name_parts = [part for part in re.findall(r"\w+", handle_key(name)) if len(part) >= 3]
    if handle_key(handle) in handle_key(name) or any(part in handle_words for part in name_parts):
        raise EnrolmentError(f"the {role}'s handle must not contain their real name or a part of it")
    nicknames = check_nicknames(role, person.nicknames, name, handle)
    if person.timezone:
        try:
            ZoneInfo(person.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise EnrolmentError(f"unknown time zone {person.timezone!r} for the {role}") from None
    return Person(normalise_email(person.email, check_deliverability), name, handle, person.timezone, nicknames)


def check_nicknames(role: str, nicknames: tuple[str, ...] | list[str], name: str, handle: str) -> tuple[str, ...]:
    """Known nicknames of a person, cleaned up (spaces collapsed, duplicates and the name itself dropped).

    Each is scrubbed like the real name (relay/anonymize/names.py), so it may not be part of the handle
    (the handle would then be scrubbed too). Shared by every way of enrolling someone (pair create, CSV
    import, group members)."""
    cleaned: list[str] = []
    for raw in nicknames:
        nickname = " ".join(str(raw).split())
        if not nickname:
            continue
        if len(nickname) > 100 or "@" in nickname or "<" in nickname or ">" in nickname:
            raise EnrolmentError(f"the {role}'s nickname {nickname!r} must be 1 to 100 characters without @, < or >")
        if sum(c.isalpha() for c in nickname) < 2:
            raise EnrolmentError(f"the {role}'s nickname {nickname!r} needs at least two letters")
        handle_words = set(re.findall(r"\w+", handle_key(handle)))
        if handle_key(nickname) in handle_key(handle) or any(
                part in handle_words for part in re.findall(r"\w+", handle_key(nickname)) if len(part) >= 3):
            raise EnrolmentError(f"the {role}'s handle must not contain their nickname {nickname!r}")
        if handle_key(nickname) != handle_key(name) and nickname not in cleaned:
            cleaned.append(nickname)
    return tuple(cleaned)


async def create_pair(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    *,
    program_id: str,
    mentor: Person,
    mentee: Person,
    policy: str | None = None,
    end_date: str | None = None,
    actor: str = "cli",
    mentor_cadence: str | None = None,
) -> Pair:
    if program_id not in settings.programs:
        known = ", ".join(sorted(settings.programs)) or "none"
        raise EnrolmentError(f"unknown program {program_id!r} (known: {known})")
    if policy is not None and not settings.policy_exists(policy):
        raise EnrolmentError(f"no policy named {policy!r} in {settings.policies_dir}")
    if end_date is not None:
        try:
            end_date = date.fromisoformat(end_date).isoformat()
        except ValueError:
            raise EnrolmentError(f"end date {end_date!r} is not a date of the form YYYY-MM-DD") from None
    if mentor_cadence is not None:
        try:
            mentor_cadence = parse_cadence(mentor_cadence)
        except ValueError as exc:
            raise EnrolmentError(f"--mentor-cadence: {exc}") from None
    deliverability = settings.relay.enrolment.check_deliverability
    people = {"mentor": check_person("mentor", mentor, deliverability),
              "mentee": check_person("mentee", mentee, deliverability)}
    if people["mentor"].email.casefold() == people["mentee"].email.casefold():
        raise EnrolmentError("the mentor and the mentee must have different addresses")
    if handle_key(people["mentor"].handle) == handle_key(people["mentee"].handle):
        raise EnrolmentError("the mentor and the mentee must have different handles")
    now = clock.now()
    async with transaction(engine) as connection:
        for role in ROLES:
            if await handle_taken(connection, program_id, people[role].handle, people[role].email):
                raise EnrolmentError(f"the handle {people[role].handle!r} is already used in program {program_id!r}")
        values = {}
        for role in ROLES:
            alias = ids.alias_local_part(people[role].handle)
            while await alias_taken(connection, alias):
                alias = ids.alias_local_part(people[role].handle)
            person = people[role]
            values[role] = {"email": person.email, "name": person.name, "handle": person.handle,
                            "alias": alias, "timezone": person.timezone, "nicknames": person.nicknames}
        values["mentor"]["cadence"] = mentor_cadence
        try:
            pair_id = await insert_pair(connection, program_id=program_id, policy=policy, end_date=end_date,
                                        created_at=now, people=values)
        except IntegrityError:
            raise EnrolmentError("a handle or alias was taken at the same moment; please try again") from None
        await events.record(connection, "pair_created", now, actor=actor, pair_id=pair_id,
                            program=program_id, policy=policy,
                            handles={r: people[r].handle for r in ROLES})
        pair = await get_pair(connection, pair_id)
        assert pair is not None
        await queue_welcome(connection, settings, pair, now)
    assert pair is not None
    return pair


async def close_pair(engine: AsyncEngine, clock: Clock, pair_id: int, actor: str = "cli") -> bool:
    now = clock.now()
    async with transaction(engine) as connection:
        if await get_pair(connection, pair_id) is None:
            raise EnrolmentError(f"no pair with id {pair_id}")
        closed = await close_pair_row(connection, pair_id, now)
        if closed:
            await events.record(connection, "pair_closed", now, actor=actor, pair_id=pair_id)
    return closed
