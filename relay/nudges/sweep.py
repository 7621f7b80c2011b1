"""One nudge sweep: every rule over every active pair (and group: relay/nudges/rules/groups.py), and each
due piece of mail sent exactly once.

The sweep runs in one write transaction: it reads the pairs, plans (relay/nudges/rules/), and for each
planned mail claims its key (relay/nudges/keys.py), queues the notice and records the event, so the
mail, its key and its event commit together. A key someone already claimed is skipped; mail due
during the recipient's quiet hours is left for a later sweep. `dry_run` plans and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices
from relay.archive.export import delivered_copies, mbox_bytes
from relay.clock import Clock
from relay.config import Settings
from relay.notices.programs import folder
from relay.nudges import keys
from relay.nudges.activity import read_activity
from relay.nudges.lifecycle import FAREWELL_WITHIN, end_due
from relay.nudges.plan import Context, Planned
from relay.nudges.rules import cadence, ending, farewell, silence, unanswered
from relay.nudges.rules import groups as groups_rules
from relay.nudges.rules.groups import GroupContext
from relay.store import events
from relay.store.conversations import list_conversations
from relay.store.database import transaction
from relay.store.pairs import Pair, list_pairs

log = logging.getLogger("relay.nudges")

RULES: list[Callable[[Context], list[Planned]]] = [
    unanswered.plan, silence.plan, cadence.plan, ending.plan, farewell.plan]


@dataclass
class SweepResult:
    now: datetime
    dry_run: bool = False
    sent: list[Planned] = field(default_factory=list)  # (or, with dry_run, would be sent)
    deferred: list[Planned] = field(default_factory=list)  # due, but it is night for the recipient
    ended: list[int] = field(default_factory=list)  # pairs whose end date passed in this sweep

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "ended": self.ended,
                "sent": [p.as_dict() for p in self.sent], "deferred": [p.as_dict() for p in self.deferred]}

    def lines(self) -> list[str]:
        verb = "would send" if self.dry_run else "sent"
        found = [f"pair {pair_id} ended (its end date has passed)" for pair_id in self.ended]
        found += [f"{verb} {p.describe()}" for p in self.sent]
        found += [f"quiet hours, later: {p.describe()}" for p in self.deferred]
        return found or [f"nothing due at {self.now.isoformat()}"]


async def current_pairs(connection: AsyncConnection, now: datetime) -> list[Pair]:
    """Pairs the rules look at: ongoing ones, and those that ended lately (for the farewell)."""
    return [pair for pair in await list_pairs(connection) if pair.status in ("active", "paused") or (
        pair.status == "ended" and pair.closed_at is not None and pair.closed_at >= now - FAREWELL_WITHIN)]


async def plan_all(connection: AsyncConnection, settings: Settings, now: datetime) -> list[Planned]:
    pairs = [pair for pair in await current_pairs(connection, now) if pair.program_id in settings.programs]
    groups = [group for group in await list_conversations(connection, kind="group")
              if group.status == "active" and group.program_id in settings.programs]
    activity = await read_activity(connection, [pair.id for pair in pairs] + [group.id for group in groups])
    planned: list[Planned] = []
    for pair in pairs:
        context = Context(settings, settings.programs[pair.program_id], pair, activity[pair.id], now)
        for rule in RULES:
            planned.extend(rule(context))
    for group in groups:
        group_context = GroupContext(settings, settings.programs[group.program_id], group, activity[group.id], now)
        for group_rule in groups_rules.RULES:
            planned.extend(group_rule(group_context))
    return planned


async def send_planned(connection: AsyncConnection, settings: Settings, item: Planned, now: datetime,
                       queue_at: datetime, *, attach_conversation: bool = True) -> bool:
    """Claim the item's key and queue its mail with its event; False when the key was claimed before.
    Also used for the farewells of a pair closed by hand (relay/endings.py) and of the partner of a person
    erased (relay/archive/person.py: `attach_conversation` False, their messages are erased too)."""
    for key in item.passed_over:
        await keys.claim(connection, key, kind=item.kind, pair_id=item.pair_id, at=now, sent=False)
    if not await keys.claim(connection, item.key, kind=item.kind, pair_id=item.pair_id, at=now):
        return False
    program = settings.programs[item.program_id]
    attachments = []
    if item.kind == "farewell" and program.send_conversation_at_end and attach_conversation:
        copies = await delivered_copies(connection, item.pair_id)
        if copies:  # the participant keeps the record of the relationship, as they saw it (anonymised)
            attachments.append((await asyncio.to_thread(mbox_bytes, copies), "application/mbox",
                                f"conversation-{item.to_handle}.mbox"))
    mail = notices.notice(item.template, item.language, folder=folder(settings, program),
                          **{**item.values, "conversation_attached": bool(attachments)})
    notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=item.rcpt,
                             subject=mail.subject, body=mail.text, html=mail.html, now=queue_at,
                             attachments=attachments, language=item.language)
    await notices.queue(connection, notice, domain=settings.relay.domain, now=queue_at, pair_id=item.pair_id,
                        message_id=item.message_id)
    await events.record(connection, item.kind, now, pair_id=item.pair_id, message_id=item.message_id,
                        key=item.key, to_handle=item.to_handle, passed_over=item.passed_over, **item.detail)
    return True


async def run(settings: Settings, engine: AsyncEngine, clock: Clock, *, dry_run: bool = False,
              queue_at: datetime | None = None) -> SweepResult:
    """Sweep as if the time were clock.now(); mail is queued for delivery at `queue_at` and dated then
    (default: that time; `nudges run --now` passes the real time, so what it sends goes out at once and its
    Date is the real send time: receivers score a Date in the future as spam)."""
    now = clock.now()
    result = SweepResult(now=now, dry_run=dry_run)
    if dry_run:
        async with engine.connect() as connection:
            result.ended = await end_due(connection, settings, now, dry_run=True)
            planned = await plan_all(connection, settings, now)
            taken = await keys.claimed(connection, [p.key for p in planned])
        for item in planned:
            if item.key not in taken:
                (result.deferred if item.quiet else result.sent).append(item)
        return result
    async with transaction(engine) as connection:
        result.ended = await end_due(connection, settings, now)
        planned = await plan_all(connection, settings, now)
        taken = await keys.claimed(connection, [p.key for p in planned])
        for item in planned:
            if item.key in taken:
                continue
            if item.quiet:
                result.deferred.append(item)
            elif await send_planned(connection, settings, item, now, queue_at or now):
                result.sent.append(item)
    if result.sent:
        log.info("nudge sweep at %s: %s", now.isoformat(), "; ".join(p.describe() for p in result.sent))
    return result
