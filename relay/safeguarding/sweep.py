"""The periodic part of safeguarding, run every minute inside `serve` beside the hold sweep:

- follow-up: an urgent held message that nobody acted on (no approval, no escalation, not decided) within
  the program's `urgent_review_within` (1 hour by default) makes the safeguarding lead and the coordinator
  be told again, once;
- the digest of automatic rejections: under `notify_rejections` with a digest period, the moderators get
  one report per period of the messages the policy rejected;
- an alert that did not arrive: when the URGENT mail to the safeguarding lead (the coordinator, when the
  program names no lead) failed, bounced, or is still being retried ALERT_LATE after it was queued, the
  coordinator, the lead and the policy's moderators (all but the address that failed) are told, once per
  alert, whatever became of the message since: a person must know that the lead may not. Two kinds of
  mail tell a lead of an urgent sign, and both are watched: the alert about an urgent hold (a pair's,
  group's or community's message) and the lead's copy of mail to help@ with a sign of harm in it or to
  concern@ (relay/inbound/program/help.py), which is never held: that report says the coordinator was
  sent the message itself, and gives no text of it to the moderators, who do not read those addresses. A
  third is watched too: the UNVERIFIED SENDER alert about a stranger's refused mail with an urgent sign
  (relay/inbound/strangers.py), which nobody else was sent, since nothing was delivered or held. Its report
  names the pair or group, the member written to and when, the kinds of the signs and the server's answer;
  the lead and the coordinator read the sender's address as given (the lead was to), the moderators do not
  (it is no enrolled identity, but it may be the child's own or their family's: they are told who has it).

Like the hold sweep (relay.holdqueue.sweeps), the first two steps first mark their rows with a conditional
update of a still-empty column and write mail only for the rows they marked, so overlapping sweeps, or two
relay instances on one database, never send the same mail twice; the third reads its events again inside
its write transaction, which writers take in turn (relay/store/database.py). Nothing is released or
discarded. Every mail sent is an event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices as outbound_notices
from relay.clock import Clock
from relay.config import Settings
from relay.hiding import SUBJECT_NOT_SHOWN
from relay.holdqueue.notify import shown_subject
from relay.metrics import sweep_timer
from relay.moderation.policy import Policy, PolicyBook
from relay.notices import Notice
from relay.safeguarding import notices
from relay.store import events
from relay.store import held as held_store
from relay.store.conversations import email_key, get_conversation
from relay.store.database import transaction
from relay.store.messages import get_message
from relay.yamlsource import ConfigError

log = logging.getLogger("relay.safeguarding")

ALERT_WATCH = timedelta(days=14)  # how long after it was queued an urgent alert is watched for failure
ALERT_LATE = timedelta(minutes=15)  # an urgent alert still being retried this long after counts as not arrived
UNDELIVERED = "urgent_alert_undelivered"


@dataclass
class SweepReport:
    follow_ups: int = 0
    rejection_digests: int = 0
    undelivered: int = 0  # alerts to the lead that did not arrive, reported
    mails: list[str] = field(default_factory=list)  # recipients, for logs and tests


async def describe(connection: AsyncConnection, item: dict[str, Any]) -> notices.Concern:
    """A queue row as safeguarding mail describes it (handles and roles from its pair)."""
    conversation = await get_conversation(connection, item["pair_id"])
    assert conversation is not None
    sender = conversation.member_by_id(item["sender_id"])
    assert sender is not None
    recipient = conversation.member_by_id(item["recipient_id"]) if item["recipient_id"] is not None else None
    to_handle, to_role = notices.addressee(conversation, recipient)
    return notices.Concern(
        id=item["message_id"], pair_id=conversation.id, program_id=item["program_id"],
        sender_handle=sender.handle, sender_role=sender.role, recipient_handle=to_handle, recipient_role=to_role,
        held_at=item["held_at"], reasons=item["reasons"],
        subject=shown_subject(item), group_name=notices.group_name(conversation))


def acted_on(item: dict[str, Any]) -> bool:
    """Someone did something: approved it, escalated it, or decided it."""
    return item["state"] != "held" or bool(item["approvals"]) or item["escalated_by"] is not None


async def _send(connection: AsyncConnection, settings: Settings, mails: list[Notice], now: datetime,
                report: SweepReport) -> None:
    for mail in mails:
        await outbound_notices.queue(connection, mail, domain=settings.relay.domain, now=now)
        report.mails.append(mail.rcpt)


def _shortest_review(settings: Settings) -> timedelta:
    """The shortest `urgent_review_within` of any program (a program unknown now has the default)."""
    return min([notices.review_within(settings, program_id) for program_id in settings.programs]
               + [notices.DEFAULT_REVIEW_WITHIN])


async def _due_follow_ups(connection: AsyncConnection, settings: Settings,
                          now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Urgent items nobody acted on within their program's review time, by program."""
    due: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in await held_store.urgent_not_followed_up(connection, now - _shortest_review(settings)):
        if not acted_on(item) and item["held_at"] <= now - notices.review_within(settings, item["program_id"]):
            due[item["program_id"]].append(item)
    return due


async def _follow_ups(connection: AsyncConnection, settings: Settings, now: datetime, report: SweepReport) -> None:
    for program_id, items in (await _due_follow_ups(connection, settings, now)).items():
        marked = set(await held_store.mark(connection, [i["message_id"] for i in items], "urgent_followup_at", now))
        chosen = [i for i in items if i["message_id"] in marked]
        if not chosen:
            continue
        mails = notices.follow_up(settings, program_id, [await describe(connection, i) for i in chosen], now)
        await _send(connection, settings, mails, now, report)
        await events.record(connection, "urgent_followup", now, message_ids=sorted(marked), program=program_id,
                            to=[m.rcpt for m in mails])
        report.follow_ups += 1


async def _due_digests(connection: AsyncConnection, policies: PolicyBook,
                       now: datetime) -> list[tuple[str, str, Policy | ConfigError, list[dict[str, Any]]]]:
    """The groups of automatic rejections not reported yet (by program and policy) to mark now: (program,
    policy name, the policy, the items) once the digest period of the group's oldest is over (or the policy
    has none); the policy's error in its place when it does not load."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in await held_store.rejections_not_reported(connection):
        groups[(item["program_id"], item["policy"])].append(item)
    due: list[tuple[str, str, Policy | ConfigError, list[dict[str, Any]]]] = []
    for (program_id, policy_name), items in groups.items():
        try:
            policy = policies.get(policy_name)
        except ConfigError as exc:
            due.append((program_id, policy_name, exc, items))
            continue
        period = policy.digest_every
        if period is None or min(i["held_at"] for i in items) <= now - period:
            due.append((program_id, policy_name, policy, items))
    return due


async def _rejection_digests(connection: AsyncConnection, settings: Settings, policies: PolicyBook, now: datetime,
                             report: SweepReport) -> None:
    for program_id, policy_name, policy, items in await _due_digests(connection, policies, now):
        if isinstance(policy, ConfigError):
            log.error("rejection digest skipped for policy %s: %s", policy_name, policy)
            continue
        marked = set(await held_store.mark(connection, [i["message_id"] for i in items], "notified_at", now,
                                           state="rejected"))
        chosen = [i for i in items if i["message_id"] in marked]
        if not chosen or not policy.notify_rejections or not policy.moderators.notify:
            continue  # marked all the same: a policy that stopped reporting does not report them later
        mails = notices.rejection_report(settings, policy, program_id,
                                         [await describe(connection, i) for i in chosen], now)
        await _send(connection, settings, mails, now, report)
        await events.record(connection, "rejection_digest", now, message_ids=sorted(marked), program=program_id,
                            to=[m.rcpt for m in mails])
        report.rejection_digests += 1


@dataclass(frozen=True)
class NotArrived:
    """An alert to a lead that did not arrive: its outbound row (urgent_notices_not_delivered), and for the
    copy of mail to help@ or concern@, the kinds of the signs found in it (`signs` None: an urgent hold, or a
    stranger's refused mail: then `stranger` is the id and the detail of its `stranger_alert` event)."""

    row: Any
    signs: list[str] | None = None
    stranger: tuple[int, dict[str, Any]] | None = None


async def _due_undelivered(connection: AsyncConnection, settings: Settings, now: datetime) -> list[NotArrived]:
    """The alerts to a lead (or to the coordinator in the lead's place) that did not arrive and were not
    reported yet: about an urgent hold, the urgent copy of mail to help@ or concern@, or a stranger's refused
    mail with an urgent sign (the UNVERIFIED SENDER alert)."""
    found = await held_store.urgent_notices_not_delivered(connection, now - ALERT_WATCH, now - ALERT_LATE)
    leads = {program_id: {email_key(address) for address in notices.lead_recipients(settings, program_id)}
             for program_id in {row.program_id for row in found}}
    to_lead = [row for row in found if email_key(row.rcpt) in leads[row.program_id]]
    # of the notices to the lead with no message behind them, only the UNVERIFIED SENDER alerts are alerts
    strangers = await held_store.stranger_alerts(
        connection, sorted({row.pair_id for row in to_lead if row.message_id is None}), now - ALERT_WATCH)
    to_lead = [row for row in to_lead if row.message_id is not None or row.id in strangers]
    # mail to help@ always reaches the coordinator: only its urgent copies are alerts
    urgent = await held_store.urgent_program_mail(connection, sorted({r.message_id for r in to_lead if r.address}))
    reported = await held_store.undelivered_reported(
        connection, sorted({row.message_id for row in to_lead if row.message_id is not None}), UNDELIVERED,
        pair_ids=sorted({row.pair_id for row in to_lead if row.message_id is None}))
    return [NotArrived(row, urgent[row.message_id] if row.address else None, strangers.get(row.id))
            for row in to_lead if row.id not in reported and (row.address is None or row.message_id in urgent)]


def _others(settings: Settings, policies: PolicyBook, row: Any) -> list[str]:
    """Who else can act on an item whose alert to `row.rcpt` did not arrive: the lead and the coordinator (for
    mail to help@ and concern@ too: the coordinator has the message, and must know the lead has not), and the
    moderators of the conversation's policy."""
    program = settings.programs.get(row.program_id)
    try:
        moderators = list(policies.get(row.policy or (program.policy if program else "")).moderators.notify)
    except ConfigError:
        moderators = []
    found = [*notices.lead_and_coordinator(settings, row.program_id), *moderators]
    return list(dict.fromkeys(a for a in found if email_key(a) != email_key(row.rcpt)))


async def _about(connection: AsyncConnection, settings: Settings, alert: NotArrived) -> notices.Concern | None:
    """What the alert was about, as the mail about its failure describes it (None: no longer in the store)."""
    row = alert.row
    if alert.signs is None:
        item = await held_store.get_held(connection, row.message_id)
        return await describe(connection, item) if item is not None else None
    message = await get_message(connection, row.message_id)
    conversation = await get_conversation(connection, row.pair_id)
    sender = conversation.member_by_id(message.sender_id) if conversation and message else None
    if conversation is None or sender is None:
        return None
    address = f"{row.address}@{settings.relay.domain}"
    return notices.Concern(
        id=row.message_id, pair_id=conversation.id, program_id=row.program_id, sender_handle=sender.handle,
        sender_role=sender.role, recipient_handle=address, recipient_role=row.address, held_at=message.received_at,
        subject=SUBJECT_NOT_SHOWN, group_name=notices.group_name(conversation),
        address=address, signs=tuple(alert.signs))


async def _stranger_about(connection: AsyncConnection, alert: NotArrived) -> notices.StrangerAlert | None:
    """What a stranger alert was about, from its event (None: the conversation is no longer in the store)."""
    row = alert.row
    detail = alert.stranger[1] if alert.stranger else {}
    conversation = await get_conversation(connection, row.pair_id)
    if conversation is None:
        return None
    written_to = email_key(str(detail.get("rcpt") or "")).partition("@")[0]
    recipient = next((m for m in conversation.members if email_key(m.alias) == written_to), None)
    handle, role = notices.addressee(conversation, recipient)
    sender = str(detail.get("header_from") or "")
    envelope = detail.get("mail_from")
    kinds = sorted({str(f.get("kind") or f.get("rule")) for f in detail.get("findings") or []})
    return notices.StrangerAlert(
        pair_id=conversation.id, program_id=row.program_id, group_name=notices.group_name(conversation),
        recipient_handle=handle, recipient_role=role, received_at=row.created_at, sender=sender,
        envelope=str(envelope) if envelope and email_key(str(envelope)) != email_key(sender) else None,
        signs=tuple(kinds))


async def _undelivered(connection: AsyncConnection, settings: Settings, policies: PolicyBook, now: datetime,
                       report: SweepReport) -> None:
    for alert in await _due_undelivered(connection, settings, now):
        row = alert.row
        error = row.last_error or "no answer yet"
        to = _others(settings, policies, row)
        if alert.stranger is not None:
            stranger = await _stranger_about(connection, alert)
            if stranger is None:
                continue
            mails = notices.stranger_undelivered(settings, stranger, row.rcpt, error, to, now) if to else []
            about: dict[str, Any] = {"stranger_alert": alert.stranger[0]}
        else:
            concern = await _about(connection, settings, alert)
            if concern is None:
                continue
            mails = notices.undelivered(settings, concern, row.rcpt, error, to, now) if to else []
            about = {"address": row.address} if row.address else {}
        await _send(connection, settings, mails, now, report)
        await events.record(connection, UNDELIVERED, now, pair_id=row.pair_id, message_id=row.message_id,
                            outbound_id=row.id, rcpt=row.rcpt, state=row.state, error=error,
                            to=[m.rcpt for m in mails], **about)
        if not mails:
            log.error("the urgent alert %s to %s did not arrive, and nobody else can be told",
                      row.message_id or "about a stranger's mail", row.rcpt)
        report.undelivered += 1


async def sweep(settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook) -> SweepReport:
    """One sweep. It first reads, outside any write transaction, whether anything may be due: the sweep runs
    every minute, and a write transaction (SQLite's lock, taken at its start) would make intake wait for
    these reads each time. Only then does it take the lock and read again, to mark and send."""
    now = clock.now()
    report = SweepReport()
    async with engine.connect() as connection:
        if not await _due_follow_ups(connection, settings, now) and not await _due_digests(connection, policies, now) \
                and not await _due_undelivered(connection, settings, now):
            return report
    async with transaction(engine) as connection:
        await _follow_ups(connection, settings, now, report)
        await _rejection_digests(connection, settings, policies, now, report)
        await _undelivered(connection, settings, policies, now, report)
    return report


class SafeguardingSweeper:
    """`sweep` for the scheduler (relay/nudges/scheduler.py): every minute inside `serve`, waking the
    delivery worker when it queued mail."""

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock, policies: PolicyBook,
                 on_queued: Any) -> None:
        self.settings, self.engine, self.clock, self.policies = settings, engine, clock, policies
        self.on_queued = on_queued

    async def run_once(self) -> SweepReport:
        with sweep_timer("safeguarding"):
            report = await sweep(self.settings, self.engine, self.clock, self.policies)
        if report.mails:
            log.info("safeguarding sweep: %d follow-ups, %d rejection digests, %d undelivered alerts reported",
                     report.follow_ups, report.rejection_digests, report.undelivered)
            self.on_queued()
        return report
