"""A delivery status report that reached a valid bounce address: read it, record it, tell people.

The report is read with flufl.bounce. The queue entry its address names says which message and
which member it concerns, so the report's own addresses are only used to tell a permanent failure
from a delay. Repeated copies of a report are recorded but counted once.
"""

from __future__ import annotations

import email
import logging
from datetime import datetime

from flufl.bounce import all_failures
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.bounces import HARD_BOUNCE_LIMIT
from relay.config import Settings
from relay.notices import compose, help_address, queue
from relay.notices.programs import for_participant, for_staff
from relay.store import events
from relay.store.conversations import email_key, get_conversation
from relay.store.events import event_values
from relay.store.schema import members, messages, outbound

log = logging.getLogger("relay.bounces")


def classify(raw: bytes) -> str:
    """'hard', 'delay' or 'unrecognised' for the delivery report `raw`."""
    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:  # a broken report is still a report: recorded as unrecognised
        log.warning("a delivery report could not be read", exc_info=True)
        return "unrecognised"
    if permanent:
        return "hard"
    if temporary:
        return "delay"
    return "unrecognised"


async def record_report(connection: AsyncConnection, settings: Settings, *, entry_id: str, result: str,
                        now: datetime, remote: str | None) -> list[str]:
    """The store work of one report; returns the recipients of the notices it queued.

    Only a participant's failures count towards marking them undeliverable: a report about a notice to a
    coordinator or moderator (whose entry names the pair too) is recorded and changes nothing else."""
    entry = (await connection.execute(select(outbound).where(outbound.c.id == entry_id))).first()
    pair = await get_conversation(connection, entry.pair_id) if entry is not None and entry.pair_id is not None \
        else None  # a pair or a group: a group copy's bounce counts against the member it was for
    member = None
    if pair is not None and entry is not None:
        member = next((m for m in pair.members if m.email_key == email_key(entry.rcpt)), None)
    await events.write(connection, [event_values(
        "bounce", now, pair_id=entry.pair_id if entry else None, message_id=entry.message_id if entry else None,
        outbound_id=entry_id, result=result, remote=remote, member=member.role if member else None)])
    if entry is None or result != "hard" or entry.state == "bounced":
        return []
    await connection.execute(update(outbound).where(outbound.c.id == entry_id).values(
        state="bounced", last_error="the recipient's provider returned a permanent failure report"))
    if pair is None or member is None:
        return []
    program = settings.programs.get(pair.program_id)
    program_name = program.name if program else pair.program_id
    sent: list[str] = []
    writer, original = None, None
    if entry.kind == "relay" and entry.message_id is not None:
        original = (await connection.execute(select(messages.c.subject, messages.c.sender_id).where(
            messages.c.id == entry.message_id))).first()
        writer = pair.member_by_id(original.sender_id) if original is not None else None
        writer = writer if writer is not None and writer.id != member.id else None
    if writer is not None and entry.message_id is not None:
        mail = for_participant(settings, program, writer, "bounce_sender",
                               subject=(original.subject if original else None) or "(no subject)",
                               partner_handle=member.handle, program_name=program_name)
        notice = compose(domain=settings.relay.domain, program_name=program_name, to=writer.email, now=now,
                         subject=mail.subject, body=mail.text,
                         reply_to=help_address(settings.relay.domain), language=mail.language)
        await queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id,
                    message_id=entry.message_id)
        sent.append(notice.rcpt)
    count = await _count_hard_bounce(connection, member.id)
    if count >= HARD_BOUNCE_LIMIT and program is not None:
        marked = await connection.execute(update(members).where(
            members.c.id == member.id, members.c.undeliverable_at.is_(None)).values(undeliverable_at=now))
        if marked.rowcount:
            staff = for_staff(settings, program, "coordinator_undeliverable", handle=member.handle,
                              role=member.role, pair_id=pair.id, count=count,
                              program_name=program_name)
            notice = compose(domain=settings.relay.domain, program_name=program_name, to=program.coordinator,
                             now=now, subject=staff.subject, body=staff.text, language=staff.language)
            await queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id)
            await events.write(connection, [event_values(
                "undeliverable", now, pair_id=pair.id, member=member.role, hard_bounces=count)])
            sent.append(notice.rcpt)
    return sent


async def _count_hard_bounce(connection: AsyncConnection, member_id: int) -> int:
    await connection.execute(update(members).where(members.c.id == member_id)
                             .values(hard_bounces=members.c.hard_bounces + 1))
    return int((await connection.execute(select(members.c.hard_bounces).where(members.c.id == member_id)))
               .scalar_one())

