"""Away mode: a participant (by mail to away@<domain>) or a coordinator (`pair away`) says that a
member is away through a date, or back. The partner is told, the member gets a confirmation, nudges
for them pause (relay/nudges/timing.is_away) and their automatic replies are not announced again.
In a group, the members of the other role are told (a mentor's mentees, a mentee's mentors): they are
the ones who wait for an answer from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.inbound.program.addresses import Incoming, explain
from relay.notices import notice
from relay.notices.programs import folder, participant_language
from relay.notices.when import format_day
from relay.nudges.timing import local_date, zone_of
from relay.store import events
from relay.store.conversations import Conversation
from relay.store.pairs import Member, Pair
from relay.store.schema import members

_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_BACK = re.compile(r"^\s*(?:re:\s*)?back\b", re.IGNORECASE)


class AwayError(Exception):
    """A request that cannot be carried out, worded for the person who made it."""


@dataclass(frozen=True)
class Request:
    until: date | None  # None: back


def parse_subject(subject: str) -> Request:
    """"until 2026-12-03" (any text around an ISO date) or "back"."""
    if _BACK.match(subject):
        return Request(None)
    match = _DATE.search(subject)
    if match is None:
        raise AwayError('the subject should be "until YYYY-MM-DD" (for example "until 2026-12-03") or "back"')
    try:
        return Request(date.fromisoformat(match.group(1)))
    except ValueError:
        raise AwayError(f"{match.group(1)} is not a date of the calendar") from None


def check(settings: Settings, pair: Conversation, member: Member, request: Request, now: datetime) -> None:
    """Raise AwayError unless the request can be carried out (a date today or later, where they are)."""
    zone = zone_of(member, settings.programs[pair.program_id])
    if request.until is not None and request.until < local_date(now, zone):
        raise AwayError(f"{request.until.isoformat()} has already passed")


async def apply(connection: AsyncConnection, settings: Settings, pair: Pair, member: Member, request: Request,
                now: datetime, *, actor: str, message_id: str | None = None) -> None:
    """Set or clear one member's away date in one pair, tell the partner and confirm to the member."""
    program = settings.programs[pair.program_id]
    check(settings, pair, member, request, now)
    until = request.until.isoformat() if request.until else None
    await connection.execute(update(members).where(members.c.id == member.id).values(away_until=until))
    partner = pair.partner_of(member)
    for reader, name in ((partner, "away_partner"), (member, "away_confirmation")):
        language = participant_language(program, reader)
        mail = notice(name, language, folder=folder(settings, program), program_name=program.name,
                      domain=settings.relay.domain, handle=member.handle, partner_handle=partner.handle,
                      role=member.role, until=format_day(request.until, language) if request.until else None)
        sent = notices.compose(domain=settings.relay.domain, program_name=program.name, to=reader.email,
                               subject=mail.subject, body=mail.text, now=now)
        await notices.queue(connection, sent, domain=settings.relay.domain, now=now, pair_id=pair.id,
                            message_id=message_id)
    await events.record(connection, "away.set" if until else "away.cleared", now, actor=actor, pair_id=pair.id,
                        message_id=message_id, role=member.role, until=until)


async def apply_group(connection: AsyncConnection, settings: Settings, group: Conversation, member: Member,
                      request: Request, now: datetime, *, actor: str, message_id: str | None = None) -> None:
    """Set or clear one member's away date in one group, tell the members of the other role and confirm
    to the member (whose confirmation names the group where a pair's names the partner)."""
    program = settings.programs[group.program_id]
    check(settings, group, member, request, now)
    until = request.until.isoformat() if request.until else None
    await connection.execute(update(members).where(members.c.id == member.id).values(away_until=until))
    told = [m for m in group.others(member) if m.role != member.role]
    for reader, name in [*((m, "away_partner") for m in told), (member, "away_confirmation")]:
        language = participant_language(program, reader)
        mail = notice(name, language, folder=folder(settings, program), program_name=program.name,
                      domain=settings.relay.domain, handle=member.handle, partner_handle=group.name or "",
                      role=member.role, until=format_day(request.until, language) if request.until else None)
        sent = notices.compose(domain=settings.relay.domain, program_name=program.name, to=reader.email,
                               subject=mail.subject, body=mail.text, now=now)
        await notices.queue(connection, sent, domain=settings.relay.domain, now=now, pair_id=group.id,
                            message_id=message_id)
    await events.record(connection, "away.set" if until else "away.cleared", now, actor=actor, pair_id=group.id,
                        message_id=message_id, role=member.role, until=until)


async def handle(connection: AsyncConnection, incoming: Incoming) -> None:
    """Mail to away@: the subject says until when, or "back"; for every pair and group the sender is in."""
    ongoing = [(pair, member) for pair, member in incoming.enrolments if pair.status in ("active", "paused")]
    try:
        request = parse_subject(incoming.subject)
        if not ongoing:
            raise AwayError("your conversation has ended, so there is nobody to tell")
        for pair, member in ongoing:
            check(incoming.settings, pair, member, request, incoming.now)
    except AwayError as exc:
        await explain(connection, incoming, "away_unclear", reason=str(exc))
        return
    for pair, member in ongoing:
        if isinstance(pair, Pair):
            await apply(connection, incoming.settings, pair, member, request, incoming.now, actor="mail",
                        message_id=incoming.message_id)
        else:
            await apply_group(connection, incoming.settings, pair, member, request, incoming.now, actor="mail",
                              message_id=incoming.message_id)
