"""Ending conversations by hand: `pair close` and `program end` (groups: relay/groups.close_group).

Nobody should just disappear: closing a pair sends both members the farewell a pair gets when its end
date passes (relay/nudges/rules/farewell.py, through the nudge sweep's `send_planned`, so the same
once-only keys apply and a pair gets one farewell however it ends), with the coordinator's reason if
one was given and the contact-exchange offer where the program allows it (not for a pair on which a concern
was ever raised: relay/contact_exchange.py). The coordinator is told. Everything is written in the
transaction that closes the pair, so a pair that was closed already sends nothing again. Later mail to a
closed pair's aliases from its members is archived and answered with the polite ended note, as for an
ended pair (relay/inbound/after_end.py).

`program end` closes every open pair and group of a program that way, one transaction each (a relay
serving meanwhile is never held up for long, and a run that stops half-way is finished by running it
again), then sends the coordinator one summary instead of a notice per conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices
from relay.clock import Clock
from relay.config import ProgramConfig, Settings
from relay.contact_exchange import exchange_allowed
from relay.enrol import EnrolmentError, check_program, clean_reason
from relay.groups import close_group
from relay.notices.programs import for_staff
from relay.nudges import keys
from relay.nudges.rules.farewell import farewells
from relay.nudges.sweep import send_planned
from relay.store import events
from relay.store.conversations import Conversation, list_conversations
from relay.store.database import transaction
from relay.store.pairs import Pair, get_pair, list_pairs
from relay.store.pairs import close_pair as close_pair_row
from relay.store.sharing import Sharing

OPEN = ("active", "paused")  # a conversation `program end` ends (an ended pair has had its farewell)


async def close_pair(settings: Settings, engine: AsyncEngine, clock: Clock, pair_id: int, reason: str | None = None,
                     actor: str = "cli", *, coordinator: bool = True) -> bool:
    """Close the pair; the first close sends both members a farewell and tells the coordinator (unless
    `coordinator` is False: `program end` tells them once). False when it was closed already."""
    reason = clean_reason(reason)
    now = clock.now()
    async with transaction(engine) as connection:
        pair = await get_pair(connection, pair_id)
        if pair is None:
            raise EnrolmentError(f"no pair with id {pair_id}")
        closed = await close_pair_row(connection, pair_id, now)
        if closed:
            await _farewell(connection, settings, pair, reason=reason, actor=actor, coordinator=coordinator,
                            now=now)
    return closed


async def _farewell(connection: AsyncConnection, settings: Settings, pair: Pair, *, reason: str | None, actor: str,
                    coordinator: bool, now: datetime) -> None:
    program = settings.programs.get(pair.program_id)
    if program is None:  # the program's file is gone: nobody to write in its name; the record still says it
        await events.record(connection, "pair_closed", now, actor=actor, pair_id=pair.id, reason=reason,
                            farewells=[], coordinator=False)
        return
    exchange = await exchange_allowed(connection, program, pair)  # not after a concern
    planned = farewells(settings, program, pair, now, exchange=exchange, reason=reason)
    sent_before = await keys.claimed(connection, [item.key for item in planned])
    due = [item for item in planned if item.key not in sent_before]
    # offered now, or by the farewell of its end date (a pair that ended, then closed): share@ still answers
    offered = exchange and (bool(due) or pair.status == "ended")
    await events.record(connection, "pair_closed", now, actor=actor, pair_id=pair.id, reason=reason,
                        farewells=[item.to_role for item in due], exchange_offered=offered, coordinator=coordinator)
    for item in due:
        await send_planned(connection, settings, item, now, now)
    if offered:
        await keys.claim(connection, keys.exchange_offered(pair.id), kind="contact_exchange.offered",
                         pair_id=pair.id, at=now, sent=False)
    if coordinator:
        await _tell_coordinator(connection, settings, program, "pair_closed_coordinator", now, pair.id,
                                pair_id=pair.id, mentor_handle=pair.mentor.handle, mentee_handle=pair.mentee.handle,
                                reason=reason, actor=actor, farewell_sent=bool(due), exchange=offered and bool(due),
                                exchange_withheld=program.contact_exchange and not exchange)


async def _tell_coordinator(connection: AsyncConnection, settings: Settings, program: ProgramConfig, name: str,
                            now: datetime, about: int | None, **values: object) -> None:
    """Queue the notice `name` to the program's coordinator (`about`: the conversation it concerns)."""
    domain = settings.relay.domain
    mail = for_staff(settings, program, name, program_name=program.name, domain=domain, **values)
    notice = notices.compose(domain=domain, program_name=program.name, to=program.coordinator, now=now,
                             subject=mail.subject, body=mail.text)
    await notices.queue(connection, notice, domain=domain, now=now, pair_id=about)


@dataclass
class ProgramEnd:
    """What `program end` ends (or, before --yes, would end)."""

    program_id: str
    pairs: list[Pair] = field(default_factory=list)
    groups: list[Conversation] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.pairs and not self.groups


async def open_conversations(settings: Settings, engine: AsyncEngine, program_id: str) -> ProgramEnd:
    """The program's open pairs and groups (EnrolmentError for an unknown program)."""
    check_program(settings, program_id)
    async with engine.connect() as connection:
        found = [p for p in await list_pairs(connection, program_id) if p.status in OPEN]
        groups = [g for g in await list_conversations(connection, program_id, kind="group") if g.status in OPEN]
    return ProgramEnd(program_id, found, groups)


async def end_program(settings: Settings, engine: AsyncEngine, clock: Clock, program_id: str,
                      reason: str | None = None, actor: str = "cli") -> ProgramEnd:
    """Close every open pair and group of the program with its farewells; one summary to the coordinator.
    Returns what this run closed (nothing, when run again)."""
    reason = clean_reason(reason)
    wanted = await open_conversations(settings, engine, program_id)
    done = ProgramEnd(program_id)
    sharing = Sharing(engine)  # one transaction per conversation, with rests: a serving relay writes meanwhile
    for pair in wanted.pairs:
        await sharing.rest()
        if await close_pair(settings, engine, clock, pair.id, reason, actor, coordinator=False):
            done.pairs.append(pair)
    for group in wanted.groups:
        await sharing.rest()
        if await close_group(settings, engine, clock, group.id, reason, actor, coordinator=False):
            done.groups.append(group)
    if done.empty:
        return done
    program = settings.programs[program_id]
    now = clock.now()
    async with transaction(engine) as connection:
        await events.record(connection, "program_ended", now, actor=actor, program=program_id, reason=reason,
                            pairs=[p.id for p in done.pairs], groups=[g.id for g in done.groups])
        await _tell_coordinator(
            connection, settings, program, "program_ended_coordinator", now, None, reason=reason, actor=actor,
            pairs=[{"id": p.id, "mentor": p.mentor.handle, "mentee": p.mentee.handle} for p in done.pairs],
            groups=[{"id": g.id, "name": g.name or ""} for g in done.groups])
    return done
