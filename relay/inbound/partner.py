"""Partner mail: a member writing to their partner through the partner's alias — the main line.

RCPT: the alias must be a pair's (active, paused, or ended or closed: see below) and the envelope name one
conversation.
DATA: the From: must be the enrolled partner (else 550: a stranger writing is a safety signal; the message is
read first, and a disclosure in it reaches the safeguarding lead: relay/inbound/strangers.py), the mail
no loop, the sender authenticated as the policy asks; then moderate and anonymise (relay/pipeline.py),
and hand archive row + decision + queue entry to the group committer. 250 is answered only after that
commit (invariant 1). Mail to an ended pair (its end date passed) or a closed one (`pair close`, `program end`)
goes to relay/inbound/after_end.py and automatic replies to relay/inbound/auto_replies.py, both after the
message is checked and only when it is not urgent (a disclosure must reach a person even after the pair
ended, or in a mail that looks automatic: it is held like any urgent mail); mail to a paused pair is held
(relay/inbound/program/help.park).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Connection

from relay import ids
from relay.anonymize.parts import Unprocessable
from relay.anonymize.scrub import Identity
from relay.archive import chain
from relay.communities import read_bystanders
from relay.hiding import staff_subject
from relay.inbound import after_end, authentication, auto_replies, refusals, strangers
from relay.inbound.aliases import Target
from relay.inbound.context import Context
from relay.inbound.hold_notices import add_notices
from relay.inbound.program import help as program_help
from relay.inbound.refusals import Refusal
from relay.moderation import Decision
from relay.moderation.inspection import PairStats
from relay.moderation.policy import Policy
from relay.pipeline import Prepared
from relay.store.committer import Merged
from relay.store.conversations import Conversation
from relay.store.messages import (
    Accepted,
    AcceptOutcome,
    OutboundEntry,
    basis,
    read_pair_stats,
    read_thread_maps,
    store_accepted_many,
)
from relay.store.pairs import Member
from relay.workers import tasks
from relay.workers.pool import LARGE, BudgetExceeded, WorkerLost

if TYPE_CHECKING:
    from relay.inbound.group import GroupTarget

log = logging.getLogger("relay.intake")

T = TypeVar("T")
ENDED = ("ended", "closed")  # its end date passed, or closed by hand: the same polite note for later mail


async def check(context: Context, local: str, current: object | None, detail: dict[str, Any]) -> Target | GroupTarget:
    """Raise Refusal unless `local` is an alias the envelope may add."""
    found = await context.aliases.lookup(context.reads, local)
    if found is None:
        from relay.inbound import group  # a group's address: relay/inbound/group.py (it imports this module)

        in_group = await group.lookup(context, local)
        if in_group is not None:
            return await group.check(context, in_group, current, detail)
        raise await context.refuse(Refusal(550, "5.1.1", "No such mentoring alias here.", "unknown_alias"), **detail)
    pair, recipient = found
    # paused: accepted and held (relay/inbound/program/help.park); ended or closed: accepted from the members
    # only (a stranger still gets 550 at DATA), archived, the sender told politely (after_end)
    if current is not None and (not isinstance(current, Target) or current.recipient.id != recipient.id):
        raise await context.refuse(refusals.one_target_only(
            "One message can go to one mentoring conversation only; please send it to each alias separately.",
        ), pair_id=pair.id, **detail)
    return Target(pair=pair, recipient=recipient)


async def take(context: Context, raw: bytes, mail_from: str, target: Target, remote: str | None,
               helo: str | None = None, reads: strangers.ReadGate | None = None) -> str:
    """Take a partner's message in; returns the queue id, or raises Refusal. `reads`: whether a stranger's
    message may be read before its refusal (relay/inbound/strangers.py)."""
    now = context.clock.now()
    sender, recipient, pair = target.sender, target.recipient, target.pair
    detail: dict[str, Any] = {
        "mail_from": mail_from, "remote": remote, "rcpt": recipient.alias_address(context.domain)}
    header = await context.header(raw, detail, pair.id)
    header_from, own_id = header.sender, header.own_id
    if header_from is None:
        raise await context.refuse(Refusal(
            550, "5.7.1", "The message has no recognisable sender (From:) address.", "no_sender",
        ), pair_id=pair.id, **detail)
    if header.looped(context.domain):
        raise await context.refuse(refusals.loop(), pair_id=pair.id, **detail)
    if not sender.writes_from(header_from):  # the primary address or one added with `pair address add`
        # refused, but read first: a disclosure from another address reaches the lead (relay/inbound/strangers.py)
        raise await strangers.refuse(context, raw, Refusal(
            550, "5.7.1",
            "This mentoring alias accepts mail only from the person it was set up for.", "stranger",
        ), conversation=pair, recipient=recipient, people=(identity(sender, context.domain),
                                                          identity(recipient, context.domain)),
            inspection=inspection_context(context, sender, recipient, PairStats(0, 0)), header_from=header_from,
            detail=detail, reads=reads)
    policy = context.policy_of(pair)
    verdict = await authentication.authenticate(context, raw, header.trace, header_from, mail_from, remote, helo,
                                                policy, pair_id=pair.id, detail=detail)
    signal = header.auto_reply
    maps, also, stats = await context.reads.run(history, pair, sender, [recipient.id], list(header.refs), now,
                                                stats_cap(policy))
    new_id = ids.message_id(context.domain)
    subject = header.subject  # the original's, for the archive (the copy gets scrubbed)
    set_aside = pair.status in ENDED or signal is not None  # archived, not delivered, unless it is urgent
    prepared = await prepared_or_refused(
        context, _prepare(context, raw, sender, recipient, maps[recipient.id], new_id, now, policy, stats, also),
        set_aside, pair.id, detail)
    decision = authentication.apply(prepared.decision, verdict, policy) if prepared is not None else None
    # Urgent mail (a disclosure) is held for a person like any urgent mail, even to an ended pair and even
    # when it looks automatic ("Auto:" subject, Auto-Submitted): a header is no reason to leave it unread.
    # An adult's out-of-office text ("WhatsApp me while I travel") reaches nobody: it pages nobody either.
    if not urgent_to_read(decision, signal, sender):
        if pair.status in ENDED:  # archived, not delivered; the sender told politely
            return await after_end.take(context, raw, mail_from, remote, target, own_id or None, now, subject,
                                        automatic=signal is not None, digest=header.body_hash)
        if signal is not None:
            return await auto_replies.take(context, raw, mail_from, remote, target, own_id or None, signal, now,
                                           subject, header.body_hash)
    assert prepared is not None and decision is not None
    accepted = Accepted(
        id=ids.queue_id(),
        pair_id=pair.id,
        sender_id=sender.id,
        sender_role=sender.role,
        recipient_id=recipient.id,
        envelope_from=mail_from,
        remote_addr=remote,
        original_message_id=own_id or None,
        body_hash=header.body_hash,
        subject=subject,
        raw=raw,
        decision=decision.action,
        reasons=[{"policy": decision.policy, "flagged": decision.flagged}, *decision.reason_dicts()],
        received_at=now,
        outbound=(OutboundEntry(rcpt=recipient.email, out_message_id=new_id, raw=prepared.raw)
                  if decision.action in ("deliver", "redact") else None),
        duplicate_window=context.settings.relay.smtp.duplicate_window,
        domain=context.domain,
        basis=basis(pair.status, sender, recipient),
        staff_subject=staff_subject(prepared.subject, context.domain),
    )
    if decision.action in ("hold", "reject"):
        add_notices(context.settings, accepted, decision, policy, pair, sender, recipient, own_id or None)
    if pair.status == "paused" and decision.action != "reject":
        program_help.park(accepted, pair.program_id, policy.name)
    async with chain.prehashed(raw, *((accepted.outbound.raw,) if accepted.outbound else ())):
        outcome: AcceptOutcome = await context.committer.run(Merged(store_accepted_many, accepted),
                                                             large=len(raw) > LARGE)
    await context.unchanged(outcome, pair.id, remote, detail["rcpt"])
    if outcome.duplicate:
        log.info("queue_id=%s duplicate resend from %s recognised; not queued again", outcome.id, remote)
    else:
        context.on_queued()
        log.info("queue_id=%s accepted pair=%s from=%s decision=%s%s size=%d", outcome.id, pair.id,
                 sender.role, decision.action, " flagged" if decision.flagged else "", len(raw))
    return outcome.id


async def prepared_or_refused(context: Context, preparing: Awaitable[T], set_aside: bool, conversation_id: int,
                              detail: dict[str, Any]) -> T | None:
    """The prepared message; or, when it cannot be read (or would take more than its CPU budget), a refusal,
    unless it would be `set_aside` anyway (archived, delivered to nobody): then None, and it is set aside
    unread, as before mail was read first."""
    try:
        return await preparing
    except (Unprocessable, BudgetExceeded, WorkerLost) as exc:
        if not set_aside:
            refusal = refusals.unprocessable(str(exc)) if isinstance(exc, Unprocessable) else refusals.from_worker(exc)
            raise await context.refuse(refusal, pair_id=conversation_id, **detail) from None
        return None


def urgent_to_read(decision: Decision | None, signal: str | None, sender: Member) -> bool:
    """Whether mail that would be set aside (to an ended conversation, or an automatic reply) is urgent, so
    held for a person instead: an urgent finding, in an automatic reply only when a mentee's."""
    return decision is not None and decision.urgent and (signal is None or sender.role == "mentee")


def history(connection: Connection, conversation: Conversation, sender: Member, recipient_ids: list[int],
            refs: list[str], now: datetime, cap: int,
            ) -> tuple[dict[int, dict[str, str]], tuple[Member, ...], PairStats]:
    """What a message's preparation needs from the store, in one read (relay/store/reads.py), for a pair or a
    group: the ids its references map to for each recipient, its bystanders (the participants of the sender's
    programs outside it, whose identities are scrubbed too: relay.communities.read_bystanders), and the
    conversation's message counts (up to `cap`; none when the policy counts nothing)."""
    maps = read_thread_maps(connection, conversation.id, sender.id, recipient_ids, refs)
    also = read_bystanders(connection, conversation, sender.email_key)
    stats = PairStats(*read_pair_stats(connection, conversation.id, now, cap)) if cap else PairStats(0, 0)
    return maps, also, stats


def stats_cap(policy: Policy) -> int:
    """How far the pair's messages must be counted for this policy's rules (0: not at all)."""
    thresholds = [getattr(s.params, "count", 0) if s.rule == "first_messages" else getattr(s.params, "max_per_day", 0)
                  for s in policy.rules if s.rule in ("rate", "first_messages")]
    return max(thresholds, default=-1) + 1


async def _prepare(context: Context, raw: bytes, sender: Member, recipient: Member, mapping: dict[str, str],
                   new_id: str, now: datetime, policy: Policy, stats: PairStats,
                   also: tuple[Member, ...] = ()) -> Prepared:
    """Moderate and anonymise (relay/pipeline.py) in a worker process (relay/workers); `also`: the bystanders,
    scrubbed like the pair."""
    domain = context.domain
    job = tasks.PrepareJob(
        sender=identity(sender, domain), recipient=identity(recipient, domain), thread_map=mapping,
        new_message_id=new_id, now=now, domain=domain, policy=policy.name,
        context={**inspection_context(context, sender, recipient, stats), "bystanders": identity_triples(also)},
        others=tuple(identity(m, domain) for m in also))
    return await context.pool.run(tasks.prepare_message, raw, job)


def inspection_context(context: Context, sender: Member, recipient: Member, stats: PairStats) -> dict[str, Any]:
    program = context.settings.programs.get(sender.program_id)
    return {
        "sender_role": sender.role, "sender_email": sender.email, "sender_name": sender.name,
        "recipient_email": recipient.email, "recipient_name": recipient.name,
        "sender_nicknames": sender.nicknames, "recipient_nicknames": recipient.nicknames,
        "sender_other_emails": sender.other_emails, "recipient_other_emails": recipient.other_emails,
        "region": program.region if program else "US", "domain": context.domain,
        "aliases": (sender.alias_address(context.domain), recipient.alias_address(context.domain)), "stats": stats,
    }


def identity_triples(people: Iterable[Member]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """The identity rule's view of other people (Inspection.other_members, .bystanders): (email, name,
    nicknames) per address."""
    return tuple((email, m.name, tuple(m.nicknames)) for m in people for email in (m.email, *m.other_emails))


def identity(member: Member, domain: str) -> Identity:
    return Identity(email=member.email, name=member.name, alias_address=member.alias_address(domain),
                    handle=member.handle, nicknames=member.nicknames, other_emails=member.other_emails,
                    language=member.language)
