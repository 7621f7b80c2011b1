"""Enrolling groups: create a group (its name and alias), add members, close it.

A group is a conversation (relay/store/conversations.py) of one or two mentors and several mentees.
People are checked as for pairs (relay/enrol.check_person: address, name, handle that does not reveal
the name, time zone, nicknames); a handle belongs to one person in a program, who may keep it in their pairs
and groups of that program. A group holds a person once and a handle once (the store refuses both).
A new member is welcomed (relay/nudges/welcome.queue_group_welcome); closing sends every member a
farewell and tells the coordinator (relay/nudges/group_lifecycle.farewell), in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from relay import ids
from relay.clock import Clock
from relay.config import Settings
from relay.enrol import (
    EnrolmentError,
    Person,
    check_person,
    check_policy_name,
    check_text,
    clean_reason,
    language_folder,
)
from relay.inbound.program.help import resume
from relay.nudges.group_lifecycle import farewell
from relay.nudges.welcome import queue_group_welcome
from relay.store import events
from relay.store.conversations import (
    ROLES,
    Conversation,
    Member,
    alias_taken,
    close_conversation,
    email_key,
    get_conversation,
    handle_key,
    handle_taken,
    insert_conversation,
    insert_member,
)
from relay.store.database import transaction

MAX_MENTORS = 2  # "one mentor or two, several mentees" (DESIGN.md, Groups)
MAX_MEMBERS = 100  # every message is copied to every other member: a bound on the fan-out


@dataclass(frozen=True)
class Added:
    group: Conversation
    member: Member


async def create_group(settings: Settings, engine: AsyncEngine, clock: Clock, *, program_id: str, name: str,
                       policy: str | None = None, actor: str = "cli") -> Conversation:
    if program_id not in settings.programs:
        known = ", ".join(sorted(settings.programs)) or "none"
        raise EnrolmentError(f"unknown program {program_id!r} (known: {known})")
    if policy is not None:
        check_policy_name(policy, settings)
    name = check_text("the group's name", name, 80)
    if not name or any(c in name for c in "<>@\"()"):  # (check_text bounds its length)
        raise EnrolmentError("the group's name must be 1 to 80 characters, without < > @ \" ( )")
    now = clock.now()
    async with transaction(engine) as connection:
        alias = ids.alias_local_part(name)
        for _ in range(100):  # bounded: a 6-character random suffix collides rarely
            if not await alias_taken(connection, alias):
                break
            alias = ids.alias_local_part(name)
        else:
            raise EnrolmentError("no free alias found for the group; please try again")
        group_id = await insert_conversation(connection, program_id=program_id, kind="group", policy=policy,
                                             created_at=now, name=name, alias=alias)
        await events.record(connection, "group_created", now, actor=actor, pair_id=group_id, program=program_id,
                            policy=policy, name=name)
        group = await get_conversation(connection, group_id)
    assert group is not None
    return group


async def add_member(settings: Settings, engine: AsyncEngine, clock: Clock, group_id: int, *, role: str,
                     person: Person, language: str | None = None, actor: str = "cli") -> Added:
    if role not in ROLES:
        raise EnrolmentError(f"the role must be mentor or mentee, not {role!r}")
    now = clock.now()
    async with engine.connect() as connection:
        group = await get_conversation(connection, group_id)
    if group is None or not group.is_group:
        raise EnrolmentError(f"no group with id {group_id}")
    program_id = group.program_id
    # before the write transaction: the deliverability check asks DNS (up to its timeout), and every writer of
    # every instance waits for a write transaction (relay/store/database.py)
    person = check_person(role, replace(person, language=language or person.language),
                          settings.relay.enrolment.check_deliverability, language_folder(settings, program_id))
    async with transaction(engine) as connection:
        group = await get_conversation(connection, group_id)
        if group is None or not group.is_group or group.program_id != program_id:
            raise EnrolmentError(f"no group with id {group_id}")
        if group.status != "active":
            raise EnrolmentError(f"group {group_id} is {group.status}; members can only join an active group")
        if any(m.email_key == email_key(person.email) for m in group.members):
            raise EnrolmentError(f"{person.email} is already a member of group {group_id}")
        if any(handle_key(m.handle) == handle_key(person.handle) for m in group.members):
            raise EnrolmentError(f"the handle {person.handle!r} is already used in group {group_id}")
        if role == "mentor" and len(group.mentors) >= MAX_MENTORS:
            raise EnrolmentError(f"group {group_id} has {MAX_MENTORS} mentors already")
        if len(group.members) >= MAX_MEMBERS:
            raise EnrolmentError(f"group {group_id} has {MAX_MEMBERS} members, the most a group may have")
        if await handle_taken(connection, group.program_id, person.handle, person.email):
            raise EnrolmentError(f"the handle {person.handle!r} is already used in program {group.program_id!r}")
        alias = ids.alias_local_part(person.handle)
        for _ in range(100):
            if not await alias_taken(connection, alias):
                break
            alias = ids.alias_local_part(person.handle)
        try:
            member_id = await insert_member(connection, group.id, group.program_id, role, {
                "email": person.email, "name": person.name, "handle": person.handle, "alias": alias,
                "timezone": person.timezone, "language": person.language,
                "nicknames": person.nicknames})
        except IntegrityError:
            raise EnrolmentError("that person or handle joined the group at the same moment; please check "
                                 "`group show` and try again") from None
        await events.record(connection, "member_added", now, actor=actor, pair_id=group.id, role=role,
                            handle=person.handle)
        fresh = await get_conversation(connection, group.id)
        assert fresh is not None
        member = fresh.member_by_id(member_id)
        assert member is not None
        await queue_group_welcome(connection, settings, fresh, member, now)
    return Added(fresh, member)


async def close_group(settings: Settings, engine: AsyncEngine, clock: Clock, group_id: int,
                      reason: str | None = None, actor: str = "cli", *, coordinator: bool = True) -> bool:
    """Close the group; the first close sends every member a farewell and tells the coordinator (unless
    `coordinator` is False: `program end` tells them once, relay/endings.py)."""
    reason = clean_reason(reason)
    now = clock.now()
    async with transaction(engine) as connection:
        group = await get_conversation(connection, group_id)
        if group is None or not group.is_group:
            raise EnrolmentError(f"no group with id {group_id}")
        closed = await close_conversation(connection, group_id, now)
        if closed:
            await events.record(connection, "group_closed", now, actor=actor, pair_id=group_id, reason=reason)
            await farewell(connection, settings, group, now, reason=reason, actor=actor, coordinator=coordinator)
    return closed


async def resume_group(engine: AsyncEngine, clock: Clock, group_id: int, actor: str = "cli") -> bool:
    """Deliver a group's mail again after a concern paused it (mail held meanwhile stays held)."""
    async with transaction(engine) as connection:
        group = await get_conversation(connection, group_id)
        if group is None or not group.is_group:
            raise EnrolmentError(f"no group with id {group_id}")
        return await resume(connection, group_id, clock.now(), actor)
