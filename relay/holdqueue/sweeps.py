"""The hold queue's service level, swept periodically: digests, reminders, escalations.

For each program's held mail: moderators who asked for a digest get one mail per period listing what
arrived since the last; mail waiting longer than review_within makes the moderators get a reminder;
mail still waiting after escalate_after more is reported to the program's coordinator. Nothing is
ever released or discarded by a sweep. Each step first marks the rows (a conditional update on a
still-empty column) and writes mail only for the rows it marked, so overlapping sweeps, or two relay
instances sweeping one database, never send the same mail twice. Every step is an event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices
from relay.clock import Clock
from relay.config import Settings
from relay.holdqueue.notify import moderator_notices
from relay.holdqueue.parties import parties_of
from relay.metrics import sweep_timer
from relay.moderation.policy import Policy, PolicyBook
from relay.notices import Notice
from relay.store import events
from relay.store import held as held_store
from relay.store.database import transaction
from relay.yamlsource import ConfigError

log = logging.getLogger("relay.holdqueue")


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
            "subject": item["subject"] or "(no subject)",
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


async def sweep(settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook) -> SweepReport:
    now = clock.now()
    report = SweepReport()
    async with transaction(engine) as connection:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for item in await held_store.list_held(connection, state="held"):
            groups[(item["program_id"], item["policy"])].append(item)
        for (program_id, policy_name), items in groups.items():
            try:
                policy = policies.get(policy_name)
            except ConfigError as exc:
                log.error("hold sweep skipped for policy %s: %s", policy_name, exc)
                continue
            digest = policy.digest_every
            waiting = [i for i in items if i["notified_at"] is None]
            if digest is not None and waiting and min(i["held_at"] for i in waiting) <= now - digest:
                report.digests += await _step(connection, settings, policy, program_id, waiting,
                                              column="notified_at", template="moderator_held", to=None,
                                              event="held_digest", now=now, report=report)
            overdue = [i for i in items if i["reminded_at"] is None and i["held_at"] <= now - policy.review_within]
            report.reminders += await _step(connection, settings, policy, program_id, overdue,
                                            column="reminded_at", template="moderator_reminder", to=None,
                                            event="held_reminder", now=now, report=report)
            limit = policy.review_within + policy.escalate_after
            stale = [i for i in items if i["escalated_at"] is None and i["held_at"] <= now - limit]
            program = settings.programs.get(program_id)
            report.escalations += await _step(connection, settings, policy, program_id, stale,
                                              column="escalated_at", template="coordinator_escalation",
                                              to=[program.coordinator] if program else [], event="held_escalated",
                                              now=now, report=report, waited=limit)
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
