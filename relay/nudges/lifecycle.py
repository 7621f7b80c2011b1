"""The end of a pair or a group: its end date (its own, else the program's) is the last day, in the
program's time zone. When it has passed a sweep marks the conversation "ended" (rules/ending.py and
rules/farewell.py write a pair's notices, rules/groups.py a group's); its copies not sent by then are
delivered, or withheld if a concern had paused it (relay.store.outbound.settle_unsent). Mail to an
ended pair's alias from the partner is accepted and archived, not delivered, and the sender is told, politely
and at most once a week (`after_end`). So is mail to a pair closed by hand (`pair close`, `program end`:
relay/endings.py); mail to an ended group is treated as mail to a closed one (relay/nudges/group_lifecycle.py).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices
from relay.config import FIRST_END_DATE, LAST_END_DATE, ProgramConfig, Settings
from relay.notices.programs import for_participant
from relay.nudges import keys
from relay.store import events
from relay.store.conversations import Conversation, conversations_by_id
from relay.store.database import transaction
from relay.store.outbound import settle_unsent
from relay.store.pairs import Member, Pair
from relay.store.schema import PAUSED, pairs

log = logging.getLogger("relay.nudges")

ONGOING = ("active", "paused")
CLOSED_NOTICE_EVERY = timedelta(days=7)
FAREWELL_WITHIN = timedelta(days=14)  # a sweep that comes later than this after the end sends no farewell


def end_of(pair: Conversation, program: ProgramConfig) -> datetime | None:
    """The moment the pair (or group) ends: midnight after its last day, where the program is. None when it has no
    end date, or when the stored one cannot be read (9999-12-31 from before end dates were bounded at
    entry, relay/enrol.check_end_date): that pair is logged and left alone, the sweep goes on for the rest."""
    try:
        last = date.fromisoformat(pair.end_date) if pair.end_date else program.end_date
        if last is None:
            return None
        return datetime.combine(last + timedelta(days=1), time(0), tzinfo=ZoneInfo(program.timezone))
    except (ValueError, OverflowError) as exc:
        log.error("pair %s: end date %r cannot be used (%s); no ending is sent for it. Set a date between "
                  "%s and %s", pair.id, pair.end_date, exc, FIRST_END_DATE, LAST_END_DATE)
        return None


async def end_due(engine: AsyncEngine, settings: Settings, now: datetime, *, dry_run: bool = False,
                  batch: int = 200) -> list[tuple[int, str]]:
    """Mark ongoing pairs and groups whose end has come as ended, `batch` per short transaction; returns
    their ids and kinds. The candidates come from an indexed query (relay/nudges/due.py), never a read of
    every pair."""
    from relay.nudges import due  # due.py builds on this module's timings

    ended: list[tuple[int, str]] = []
    after = 0
    while True:
        async with engine.connect() as connection:
            ids = await due.ended_candidates(connection, settings, now, after=after, limit=batch)
            found = await conversations_by_id(connection, ids)
        if not ids:
            return ended
        after = ids[-1]
        passed = [pair for pair in found if _has_ended(pair, settings, now)]
        if dry_run or not passed:
            ended.extend((pair.id, pair.kind) for pair in passed if dry_run)
            continue
        async with transaction(engine) as connection:
            for pair in passed:
                changed = await connection.execute(update(pairs).where(
                    pairs.c.id == pair.id, pairs.c.status.in_(ONGOING)).values(status="ended", closed_at=now))
                if not changed.rowcount:
                    continue
                end = end_of(pair, settings.programs[pair.program_id])
                assert end is not None
                # "ended" replaces "paused": the event keeps that it was (the concern itself is in its own
                # events, which bar the contact exchange: relay/contact_exchange.py)
                await events.record(connection, "group.ended" if pair.is_group else "pair.ended", now,
                                    pair_id=pair.id, end_date=end.date().isoformat(),
                                    **({"paused": True} if pair.status == PAUSED else {}))
                # what its members wrote before the end is delivered, unless a concern had paused it
                await settle_unsent(connection, pair.id, now, "ended", paused=pair.status == PAUSED)
                ended.append((pair.id, pair.kind))


def _has_ended(pair: Conversation, settings: Settings, now: datetime) -> bool:
    program = settings.programs.get(pair.program_id)
    end = end_of(pair, program) if program is not None and pair.status in ONGOING else None
    return end is not None and end <= now


async def after_end(connection: AsyncConnection, settings: Settings, pair: Pair, sender: Member, message_id: str,
                    now: datetime, *, automatic: bool) -> bool:
    """Tell the sender of mail to an ended or closed pair that the conversation has ended (once a week at most)."""
    if automatic:
        return False
    week = int(now.timestamp() // CLOSED_NOTICE_EVERY.total_seconds())
    key = f"closed_notice:{pair.id}:{sender.role}:{week}"
    if not await keys.claim(connection, key, kind="closed_notice", pair_id=pair.id, at=now):
        return False
    program = settings.programs[pair.program_id]
    mail = for_participant(settings, program, sender, "closed_notice", program_name=program.name,
                           handle=sender.handle, domain=settings.relay.domain,
                           partner_handle=pair.partner_of(sender).handle)
    notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=sender.email, now=now,
                             subject=mail.subject, body=mail.text, language=mail.language,
                             reply_to=notices.help_address(settings.relay.domain))
    await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id,
                        message_id=message_id)
    await events.record(connection, "closed_notice", now, pair_id=pair.id, message_id=message_id, role=sender.role)
    return True
