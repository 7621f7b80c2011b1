"""Group mail: a member writes to their group's alias (every other member receives a copy) or to another
member's private alias inside the group (that member alone: the private word).

RCPT: the alias must be an active group's, and the envelope name one group (the group's alias and a
private alias of the same group together count as the group). DATA: the From: must be an enrolled
address of a member (for a private alias: of another member than the one addressed) — anyone else gets
550 and a `refused` event (a stranger writing is a safety signal; the message is read first, and a disclosure
in it reaches the safeguarding lead: relay/inbound/strangers.py). The message is archived once and
moderated once (relay/pipeline.prepare_group: a hold holds it for everyone, a release delivers every
copy once: relay/holdqueue/actions.py); each recipient gets one outbound copy, its thread ids mapped
for that recipient's client (relay/store/messages.group_thread_maps).

Automatic replies (out-of-office) to a group are archived and not forwarded; the members it was addressed
to are told once that the member is away (relay/inbound/group_auto_replies.py).
A paused group's mail (a member raised a concern: relay/inbound/program/help.py) is held for review.
A closed or ended group's addresses still take mail from members: it is checked, and unless it is urgent
(then held for a person, as any urgent mail) archived, not delivered, and the sender gets a polite note at
most weekly (as for an ended pair); anyone else still gets 550. Automatic replies too are checked first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay import digests, ids
from relay.archive import chain
from relay.fanout import face, identity, recipients_of
from relay.hiding import staff_subject
from relay.inbound import authentication, group_auto_replies, refusals, strangers
from relay.inbound.after_end import archive_ended
from relay.inbound.context import Context
from relay.inbound.hold_notices import add_notices
from relay.inbound.partner import history, identity_triples, prepared_or_refused, stats_cap, urgent_to_read
from relay.inbound.program import help as program_help
from relay.inbound.refusals import Refusal
from relay.moderation.inspection import PairStats
from relay.nudges import group_lifecycle
from relay.pipeline import GroupCopy, PreparedGroup
from relay.store.committer import Merged
from relay.store.conversations import Conversation, Member, find_group_address
from relay.store.messages import (
    Accepted,
    AcceptOutcome,
    OutboundEntry,
    basis,
    store_accepted_many,
)
from relay.workers import tasks
from relay.workers.pool import LARGE

log = logging.getLogger("relay.intake")
ENDED = ("closed", "ended")  # accepted from members, archived, not delivered; the sender told


@dataclass(frozen=True)
class GroupTarget:
    """A group's alias (recipient None: every other member) or a member's private alias in it."""

    group: Conversation
    recipient: Member | None


async def lookup(context: Context, local: str) -> GroupTarget | None:
    async with context.engine.connect() as connection:
        found = await find_group_address(connection, local)
    return GroupTarget(*found) if found is not None else None


async def check(context: Context, target: GroupTarget, current: object | None, detail: dict[str, Any]) -> GroupTarget:
    """Raise Refusal unless the envelope may add this group address."""
    group = target.group
    if current is None:
        return target
    if isinstance(current, GroupTarget) and current.group.id == group.id:
        if current.recipient is None or target.recipient is None:
            return GroupTarget(group, None)  # the group and a private alias of it: the group (reply-all)
        if current.recipient.id == target.recipient.id:
            return current
    raise await context.refuse(refusals.one_target_only(
        "One message can go to one mentoring conversation only; please send it to each address separately.",
    ), pair_id=group.id, **detail)


async def take(context: Context, raw: bytes, mail_from: str, target: GroupTarget, remote: str | None,
               helo: str | None = None, skip: frozenset[str] = frozenset(),
               reads: strangers.ReadGate | None = None) -> str:
    """Take a member's message to the group (or to one member privately); returns the queue id. `skip`:
    addresses (email keys) that already received this message through another community; `reads`: whether a
    stranger's message may be read before its refusal (relay/inbound/strangers.py)."""
    now = context.clock.now()
    group, addressed = target.group, target.recipient
    domain = context.domain
    rcpt = addressed.alias_address(domain) if addressed else group.alias_address(domain)
    detail: dict[str, Any] = {"mail_from": mail_from, "remote": remote, "rcpt": rcpt}
    header = await context.header(raw, detail, group.id)
    header_from, own_id = header.sender, header.own_id
    if header_from is None:
        raise await context.refuse(Refusal(
            550, "5.7.1", "The message has no recognisable sender (From:) address.", "no_sender",
        ), pair_id=group.id, **detail)
    if header.looped(domain):
        raise await context.refuse(refusals.loop(), pair_id=group.id, **detail)
    sender = group.member_by_email(header_from)
    if sender is None or (addressed is not None and sender.id == addressed.id) or \
            not sender.writes_from(header_from) or sender.left_at is not None:
        # refused, but read first: a disclosure from another address reaches the lead (relay/inbound/strangers.py)
        raise await strangers.refuse(context, raw, Refusal(
            550, "5.7.1", "This mentoring group accepts mail only from its members.", "stranger",
        ), conversation=group, recipient=addressed, people=tuple(identity(m, domain) for m in group.members),
            inspection=_stranger_inspection(context, group), header_from=header_from, detail=detail,
            reads=reads)
    policy = context.policy_of(group)
    verdict = await authentication.authenticate(context, raw, header.trace, header_from, mail_from, remote, helo,
                                                policy, pair_id=group.id, detail=detail)
    subject = header.subject
    signal = header.auto_reply
    recipients = [r for r in recipients_of(group, sender, addressed) if r.email_key not in skip]
    refs = list(header.refs)
    maps, also, stats = await context.reads.run(history, group, sender, [r.id for r in recipients], refs, now,
                                                stats_cap(policy))
    copies = [GroupCopy(ids.message_id(domain), maps[r.id]) for r in recipients]
    # Every message is checked, whoever it would reach: a group of one (nobody else yet) gets one copy made
    # only to be checked, and thrown away.
    set_aside = group.status in ENDED or signal is not None  # archived, not delivered, unless it is urgent
    prepared = await prepared_or_refused(
        context, _prepare(context, raw, group, sender, copies or [GroupCopy(ids.message_id(domain), {})], now,
                          policy, stats, also, addressed), set_aside, group.id, detail)
    decision = authentication.apply(prepared.decision, verdict, policy) if prepared is not None else None
    # Urgent mail (a disclosure) is held for a person even when the group has ended or the mail looks automatic.
    urgent = urgent_to_read(decision, signal, sender)
    if group.status in ENDED and not urgent:
        return await _after_end(context, raw, mail_from, remote, group, sender, addressed, own_id or None, now,
                                subject, header.body_hash, automatic=signal is not None)
    if signal is not None and not urgent:
        return await group_auto_replies.take(context, raw, mail_from, remote, group, sender, addressed, recipients,
                                             own_id or None, signal, now, subject)
    assert prepared is not None and decision is not None
    if recipients or urgent:
        action: str = decision.action
        reasons = [{"policy": decision.policy, "flagged": decision.flagged}, *decision.reason_dicts()]
    else:  # a group of one: archived, nobody to deliver to; held only when urgent (not for a later member)
        action, reasons = "deliver", []
    delivered = bool(recipients) and action in ("deliver", "redact")
    accepted = Accepted(
        id=ids.queue_id(), pair_id=group.id, sender_id=sender.id, sender_role=sender.role,
        recipient_id=addressed.id if addressed else None, envelope_from=mail_from, remote_addr=remote,
        original_message_id=own_id or None, body_hash=header.body_hash, subject=subject, raw=raw, decision=action,
        reasons=reasons, received_at=now, outbound=None,
        duplicate_window=context.settings.relay.smtp.duplicate_window, domain=domain,
        copies=[OutboundEntry(rcpt=r.email, out_message_id=c.new_message_id, raw=body, recipient_id=r.id,
                              state=digests.copy_state(context.settings, group, r, private=addressed is not None))
                for r, c, body in zip(recipients, copies, prepared.raws if delivered else [], strict=False)],
        basis=basis(group.status, sender, *recipients),
        staff_subject=staff_subject(prepared.subject, domain),
    )
    if action in ("hold", "reject"):
        add_notices(context.settings, accepted, decision, policy, group, sender, addressed, own_id or None)
    if group.status == "paused" and action != "reject":
        program_help.park(accepted, group.program_id, policy.name)  # a concern paused it: held, not delivered
        accepted.copies = []
    async with chain.prehashed(raw, *(copy.raw for copy in accepted.copies)):  # chain hashes in a thread
        outcome: AcceptOutcome = await context.committer.run(Merged(store_accepted_many, accepted),
                                                             large=len(raw) > LARGE)
    await context.unchanged(outcome, group.id, remote, detail["rcpt"])
    if not outcome.duplicate:
        context.on_queued()
        log.info("queue_id=%s accepted group=%s from=%s decision=%s copies=%d size=%d", outcome.id, group.id,
                 sender.role, action, len(accepted.copies), len(raw))
    return outcome.id


async def _after_end(context: Context, raw: bytes, mail_from: str, remote: str | None, group: Conversation,
                     sender: Member, addressed: Member | None, own_id: str | None, now: datetime,
                     subject: str | None, digest: str, *, automatic: bool) -> str:
    """Mail from a member to a closed or ended group: archived, not delivered; the sender gets a polite
    note (weekly at most, relay/nudges/group_lifecycle.after_end), none for an automatic reply."""
    accepted = Accepted(
        id=ids.queue_id(), pair_id=group.id, sender_id=sender.id, sender_role=sender.role,
        recipient_id=addressed.id if addressed else None, envelope_from=mail_from, remote_addr=remote,
        original_message_id=own_id, body_hash=digest, subject=subject, raw=raw, decision="ended",
        reasons=[{"rule": "group_ended"}], received_at=now, outbound=None,
        duplicate_window=context.settings.relay.smtp.duplicate_window, domain=context.domain,
        basis=basis(group.status, sender),
    )

    outcome = await archive_ended(context, accepted, lambda connection: group_lifecycle.after_end(
        connection, context.settings, group, sender, accepted.id, now, automatic=automatic))
    log.info("queue_id=%s to the %s group %s: archived, not delivered", outcome.id, group.status, group.id)
    return outcome.id


async def _prepare(context: Context, raw: bytes, group: Conversation, sender: Member, copies: list[GroupCopy],
                   now: datetime, policy: Any, stats: PairStats, also: tuple[Member, ...] = (),
                   addressed: Member | None = None) -> PreparedGroup:
    """Moderate once and anonymise (relay/pipeline.prepare_group) in a worker process (relay/workers);
    `addressed`: the member a private word is for (its copy faces the sender alone: relay/fanout.face)."""
    domain = context.domain
    people = [identity(m, domain) for m in (*group.members, *also)]
    own = people[[m.id for m in group.members].index(sender.id)]
    program = context.settings.programs.get(group.program_id)
    inspection = {
        "sender_role": sender.role, "sender_email": sender.email, "sender_name": sender.name,
        "sender_nicknames": sender.nicknames, "sender_other_emails": sender.other_emails,
        "recipient_email": "", "recipient_name": "",
        "other_members": identity_triples(m for m in group.members if m.id != sender.id),
        "bystanders": identity_triples(also),
        "region": program.region if program else "US", "domain": domain,
        "aliases": (*(p.alias_address for p in people), group.alias_address(domain) or ""),
        "stats": stats,
    }
    job = tasks.GroupPrepareJob(sender=own, members=people, face=face(context.settings, group, sender, addressed),
                                copies=copies, now=now, domain=domain, policy=policy.name, context=inspection)
    return await context.pool.run(tasks.prepare_group_message, raw, job)


def _stranger_inspection(context: Context, group: Conversation) -> dict[str, Any]:
    """The policy's context for reading a stranger's message to the group: every member is somebody else."""
    program = context.settings.programs.get(group.program_id)
    domain = context.domain
    return {
        "other_members": identity_triples(group.members),
        "region": program.region if program else "US", "domain": domain,
        "aliases": (*(m.alias_address(domain) for m in group.members), group.alias_address(domain) or ""),
    }
