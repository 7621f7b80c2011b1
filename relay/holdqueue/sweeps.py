"""The hold queue's service level, swept periodically: digests, reminders, escalations.

For each program's held mail: moderators who asked for a digest get one mail per period listing what
arrived since the last; mail waiting longer than review_within makes the moderators get a reminder;
mail still waiting after escalate_after more is reported to the program's coordinator. Nothing is
ever released or discarded by a sweep. The due rows are found by indexed queries (state, then the mark
still empty and the age), CHUNK at a time, each chunk in its own short transaction: a queue of thousands
never holds intake up, and a chunk's mail lists at most CHUNK messages. Each step first marks the rows
(a conditional update on a still-empty column) and writes mail only for the rows it marked, so
overlapping sweeps, or two relay instances sweeping one database, never send the same mail twice.
Every step is an event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices
from relay.clock import Clock
from relay.config import Settings
from relay.holdqueue.notify import moderator_notices, shown_subject
from relay.holdqueue.parties import parties_of
from relay.metrics import sweep_timer
from relay.moderation.policy import Policy, PolicyBook
from relay.notices import Notice
from relay.store import events
from relay.store import held as held_store
from relay.store.database import transaction
from relay.yamlsource import ConfigError

log = logging.getLogger("relay.holdqueue")

CHUNK = 200  # held items per transaction (and at most per mail: more make several mails)
EPSILON = timedelta(microseconds=1)  # `held_at <= t` as `held_at < t + EPSILON`


@dataclass
class SweepReport:
    digests: int = 0
    reminders: int = 0
    escalations: int = 0
    mails: list[str] = field(default_factory=list)  # recipients, for logs and tests


async def _describe(connection: AsyncConnection, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items as the moderators' mail names them: handles only; a group's item is "to the group NAME"."""
    found = await parties_of(connection, items)
    described = []
    for item in items:
        between = found[item["message_id"]]
        described.append({
            "id": item["message_id"], "pair_id": item["pair_id"], "sender_handle": between.sender.handle,
            "recipient_handle": between.to_text, "group_name": between.group_name,
            "subject": shown_subject(item),
            "held_at": item["held_at"], "reasons": item["reasons"],
        })
    return described


async def _queue(connection: AsyncConnection, settings: Settings, mails: list[Notice], now: datetime,
                 report: SweepReport) -> None:
    for mail in mails:
        await notices.queue(connection, mail, domain=settings.relay.domain, now=now)
        report.mails.append(mail.rcpt)


async def _step(
    connection: AsyncConnection, settings: Settings, policy: Policy, program_id: str, items: list[dict[str, Any]],
    *, column: str, template: str, to: list[str] | None, event: str, now: datetime, report: SweepReport,
    waited: timedelta | None = None,
) -> int:
    if not items or (to is not None and not to) or (to is None and not policy.moderators.notify):
        return 0
    marked = set(await held_store.mark(connection, [i["message_id"] for i in items], column, now))
    chosen = [i for i in items if i["message_id"] in marked]
    if not chosen:
        return 0
    mails = moderator_notices(settings, template=template, policy=policy, program_id=program_id,
                              items=await _describe(connection, chosen), now=now, to=to, waited=waited)
    await _queue(connection, settings, mails, now, report)
    await events.record(connection, event, now, message_ids=sorted(marked), program=program_id,
                            to=[m.rcpt for m in mails])
    return 1


async def _steps(engine: AsyncEngine, settings: Settings, policy: Policy, key: tuple[str, str], held_before: datetime,
                 now: datetime, report: SweepReport, *, column: str, template: str, to: list[str] | None, event: str,
                 waited: timedelta | None = None) -> int:
    """One step (`_step`) over the rows of `key` (program, policy) due for `column` (held before
    `held_before`, the mark still empty), CHUNK rows per transaction: read by ix_held_state, marked, told.
    Whether a row is due is read first, outside any write transaction."""
    program_id, policy_name = key
    done = 0
    after: tuple[datetime, str] | None = None
    while True:
        async with engine.connect() as connection:  # the sweep runs every minute: no write transaction
            # (SQLite's lock, which intake's commits wait for) unless a row is due
            if not await held_store.due_for(connection, program_id, policy_name, column, held_before, limit=1,
                                            after=after):
                return done
        async with transaction(engine) as connection:
            items = await held_store.due_for(connection, program_id, policy_name, column, held_before,
                                             limit=CHUNK, after=after)
            if not items:
                return done
            after = (items[-1]["held_at"], items[-1]["message_id"])
            done += await _step(connection, settings, policy, program_id, items, column=column, template=template,
                                to=to, event=event, now=now, report=report, waited=waited)


async def sweep(settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook) -> SweepReport:
    """One pass over the queue: for each (program, policy) with mail waiting, the due digests, reminders and
    escalations, each found by an indexed query and written CHUNK items per short transaction."""
    now = clock.now()
    report = SweepReport()
    async with engine.connect() as connection:
        groups = await held_store.held_groups(connection)
    for key in sorted(groups):
        program_id, policy_name = key
        try:
            policy = policies.get(policy_name)
        except ConfigError as exc:
            log.error("hold sweep skipped for policy %s: %s", policy_name, exc)
            continue
        if policy.digest_every is not None:  # a digest when the oldest unannounced item has waited a period
            async with engine.connect() as connection:
                oldest = await held_store.due_for(connection, program_id, policy_name, "notified_at",
                                                  now - policy.digest_every + EPSILON, limit=1)
            if oldest:
                report.digests += await _steps(engine, settings, policy, key, now + EPSILON, now, report,
                                               column="notified_at", template="moderator_held", to=None,
                                               event="held_digest")
        report.reminders += await _steps(engine, settings, policy, key, now - policy.review_within + EPSILON, now,
                                         report, column="reminded_at", template="moderator_reminder", to=None,
                                         event="held_reminder")
        limit = policy.review_within + policy.escalate_after
        program = settings.programs.get(program_id)
        report.escalations += await _steps(engine, settings, policy, key, now - limit + EPSILON, now, report,
                                           column="escalated_at", template="coordinator_escalation",
                                           to=[program.coordinator] if program else [], event="held_escalated",
                                           waited=limit)
    return report


class HoldSweeper:
    """One `sweep` and the follow-up: the scheduler (relay/nudges/scheduler.py) runs it every minute
    inside `serve`, and wakes the delivery worker when it queued mail."""

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook,
                 on_queued: Any) -> None:
        self.settings, self.engine, self.clock, self.policies = settings, engine, clock, policies
        self.on_queued = on_queued

    async def run_once(self) -> None:
        with sweep_timer("hold"):
            report = await sweep(self.settings, self.engine, self.clock, self.policies)
        if report.mails:
            log.info("hold sweep: %d digests, %d reminders, %d escalations",
                     report.digests, report.reminders, report.escalations)
            self.on_queued()
