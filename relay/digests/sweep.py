"""The digest sweep: each member on a daily (weekly) digest gets, once per local day (ISO week), one mail
with the copies held back for them before that day (week) began in their time zone — so a digest holds
whole periods, and a message of today waits for tomorrow's digest.

Once only, even with several relay instances or sweeps at once: each digest is written in one
transaction that claims its key `digest.<mode>:<member>:<period>` (relay/nudges/keys.py), moves the
held-back rows from state `digest` to `digested` (all of them or the transaction is rolled back) and
queues the digest; a second sweep's claim is a no-op. During the member's quiet hours
(responsiveness.quiet_hours, relay/nudges/timing.py) the digest waits for a later sweep. A member who
switched to `each` (digest@) has their held-back copies released for delivery one by one. A private word
is never put in a digest (relay/digests/__init__.py): one held back before that rule is sent on its own,
refaced as a private word (relay/digests/private.py).

A conversation's status is read again inside each transaction: while a concern has it paused, its copies wait
(no digest, no release one by one; they go out after `pair resume` / `group resume`). A close settles them
(relay.store.outbound.settle_unsent: delivered at once, or withheld after a concern); copies a close left
waiting (an earlier version's close) are settled by the sweep the same way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.headerregistry import Address
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.clock import Clock
from relay.config import ProgramConfig, Settings
from relay.contact_exchange import concerned
from relay.digests import mode_of
from relay.digests.compose import contents, digest_message, entry_of
from relay.digests.private import reface
from relay.fanout import face
from relay.notices.programs import for_participant
from relay.nudges import keys
from relay.nudges.timing import is_quiet, zone_of
from relay.store import events
from relay.store.conversations import (
    ENDED,
    PAUSED,
    Conversation,
    Member,
    conversations_by_id,
    current_addresses,
    email_key,
    status_of,
)
from relay.store.database import transaction
from relay.store.outbound import queue_outbound, settle_unsent
from relay.store.schema import STOPPED, messages, outbound

log = logging.getLogger("relay.digests")


@dataclass
class DigestResult:
    now: datetime
    sent: list[dict[str, Any]] = field(default_factory=list)  # {member, conversation, period, messages}
    deferred: list[dict[str, Any]] = field(default_factory=list)  # quiet hours for the member
    released: int = 0  # copies of members who switched to each, queued one by one
    paused: list[int] = field(default_factory=list)  # conversations whose copies wait: a concern paused them
    withheld: int = 0  # copies of conversations closed or ended after a concern, never sent

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "sent": self.sent, "deferred": self.deferred,
                "released": self.released, "paused": self.paused, "withheld": self.withheld}

    def lines(self) -> list[str]:
        found = [f"sent a {d['mode']} digest of {d['messages']} message(s) to member {d['member']} "
                 f"({d['period']})" for d in self.sent]
        found += [f"quiet hours, later: digest for member {d['member']}" for d in self.deferred]
        if self.released:
            found.append(f"released {self.released} held-back cop(ies) of members who chose each")
        found += [f"paused after a concern, its copies wait: conversation {c}" for c in self.paused]
        if self.withheld:
            found.append(f"withheld {self.withheld} cop(ies) of conversations closed after a concern (never sent)")
        return found or [f"no digest due at {self.now.isoformat()}"]


class _Taken(Exception):
    """Another sweep moved some of these rows first: roll back this digest."""


def period_start(now: datetime, member: Member | None, program: ProgramConfig, mode: str) -> tuple[str, datetime]:
    """(period name, when it began) in the member's time zone: the local day, or the ISO week from Monday."""
    zone = zone_of(member, program)
    local = now.astimezone(zone)
    day = local.date()
    if mode == "weekly":
        day = day - timedelta(days=day.weekday())
        year, week, _ = day.isocalendar()
        name = f"{year}-W{week:02d}"
    else:
        name = day.isoformat()
    return name, datetime.combine(day, time(0), tzinfo=zone)


async def run(settings: Settings, engine: AsyncEngine, clock: Clock, queue_at: datetime | None = None) -> DigestResult:
    """One sweep at the clock's time; `queue_at`: when the digests become due for delivery (default: now;
    `nudges run --now` passes the real time so that a running relay sends them at once)."""
    now = clock.now()
    due_at = queue_at or now
    result = DigestResult(now)
    async with engine.connect() as connection:
        # the copies held back, without their bytes: those of the digests due now are read when each is made
        held = (await connection.execute(
            select(outbound.c.id, outbound.c.pair_id, outbound.c.rcpt, outbound.c.created_at,
                   messages.c.sender_id, messages.c.recipient_id)
            .select_from(outbound.outerjoin(messages, messages.c.id == outbound.c.message_id))
            .where(outbound.c.state == "digest").order_by(outbound.c.created_at, outbound.c.id))).all()
        conversations: dict[int, Conversation | None] = {
            c.id: c for c in await conversations_by_id(connection, sorted({row.pair_id for row in held}))}
    ended = [c for c in conversations.values() if c is not None and c.status in ENDED]
    if ended:  # copies a close left waiting (an earlier version's): settled as the close settles them now
        async with engine.connect() as connection:
            after_concern = await concerned(connection, [c.id for c in ended])
        for closed in ended:
            async with transaction(engine) as connection:
                settled = await settle_unsent(connection, closed.id, now, closed.status,
                                              paused=closed.id in after_concern)
            if closed.id in after_concern:
                result.withheld += len(settled)
            else:
                result.released += len(settled)
    result.paused += [c.id for c in conversations.values() if c is not None and c.status == PAUSED]
    by_member: dict[tuple[int, str], list[Any]] = {}
    for row in held:
        by_member.setdefault((row.pair_id, email_key(row.rcpt)), []).append(row)
    for (pair_id, key), rows in by_member.items():
        conversation = conversations.get(pair_id)
        if conversation is not None and conversation.status in STOPPED:
            continue
        member = conversation.member_by_email(key) if conversation else None
        program = settings.programs.get(conversation.program_id) if conversation else None
        if conversation is None or member is None or program is None:
            continue
        private = [r for r in rows if r.recipient_id is not None]  # held back before private words went at once
        if private:
            result.released += await _release_private(settings, engine, conversation, member, private, due_at)
            rows = [r for r in rows if r.recipient_id is None]
            if not rows:
                continue
        mode = mode_of(settings, conversation, member)
        if mode == "each":
            result.released += await _release(engine, conversation.id, [r.id for r in rows], due_at)
            continue
        period, began = period_start(now, member, program, mode)
        due = [r for r in rows if r.created_at < began]
        if not due:
            continue
        if is_quiet(now, zone_of(member, program), program.responsiveness.quiet_hours):
            result.deferred.append({"member": member.id, "conversation": conversation.id, "period": period})
            continue
        try:
            if await _send(settings, engine, conversation, member, program, mode, period, due, now, due_at):
                result.sent.append({"member": member.id, "conversation": conversation.id, "period": period,
                                    "mode": mode, "messages": len(due)})
        except _Taken:
            log.info("digest for member %s (%s) was taken by another sweep", member.id, period)
    return result


async def _release(engine: AsyncEngine, conversation_id: int, entry_ids: list[str], now: datetime) -> int:
    async with transaction(engine) as connection:
        if not await _delivers(connection, conversation_id):
            return 0
        moved = await connection.execute(update(outbound).where(
            outbound.c.id.in_(entry_ids), outbound.c.state == "digest").values(state="queued", next_attempt_at=now))
    return int(moved.rowcount or 0)


async def _release_private(settings: Settings, engine: AsyncEngine, conversation: Conversation, member: Member,
                           rows: list[Any], now: datetime) -> int:
    """Send private words held back for `member` one by one, each refaced to answer its sender alone. The
    held-back copy is chained as it was written, so it is not rewritten: it becomes `digested` and the
    refaced copy is queued as a new, chained entry (`archive verify` keeps passing)."""
    async with engine.connect() as connection:
        found = {row.id: row for row in (await connection.execute(
            select(outbound.c.id, outbound.c.kind, outbound.c.rcpt, outbound.c.raw, outbound.c.out_message_id,
                   outbound.c.message_id).where(outbound.c.id.in_([row.id for row in rows])))).all()}
    moved = 0
    for row in rows:
        held = found.get(row.id)
        sender = conversation.member_by_id(row.sender_id)
        if held is None:
            continue
        raw = held.raw
        if sender is not None:
            private, group = face(settings, conversation, sender, member), face(settings, conversation, sender, None)
            raw = await asyncio.to_thread(reface, raw, answer_to=private.face.reply_to, group_footer=group.footer,
                                          private_footer=private.footer)  # parsing a message: off the loop
        async with transaction(engine) as connection:
            if not await _delivers(connection, conversation.id):
                return moved
            done = await connection.execute(update(outbound).where(
                outbound.c.id == row.id, outbound.c.state == "digest").values(state="digested"))
            if not done.rowcount:
                continue  # taken meanwhile (another sweep)
            await queue_outbound(connection, kind=held.kind, rcpt=held.rcpt, raw=raw,
                                 out_message_id=held.out_message_id, now=now, domain=settings.relay.domain,
                                 pair_id=conversation.id, message_id=held.message_id)
        moved += 1
    if moved:
        log.info("sent %d private word(s) held back for member %s on their own, not in a digest", moved, member.id)
    return moved


async def _send(settings: Settings, engine: AsyncEngine, conversation: Conversation, member: Member,
                program: ProgramConfig, mode: str, period: str, rows: list[Any], now: datetime,
                due_at: datetime) -> bool:
    """One digest in one transaction (key, rows, mail); False when this period's digest was sent already."""
    domain = settings.relay.domain
    # the copies' bytes, read here (a copy that leaves the `digest` state meanwhile rolls back the
    # transaction below: _Taken)
    async with engine.connect() as connection:
        raws = dict((await connection.execute(
            select(outbound.c.id, outbound.c.raw).where(outbound.c.id.in_([row.id for row in rows])))).all())
    entries = [entry_of(raws[row.id], row.created_at) for row in rows]
    name = conversation.name or program.name
    mail = for_participant(settings, program, member, "digest_contents", count=len(entries),
                           conversation_name=name, lines=contents(entries), mode=mode, domain=domain)
    local, _, _ = (conversation.alias_address(domain) or f"digest@{domain}").rpartition("@")
    sender = Address(display_name=mail.subject, username=local, domain=domain)
    message_id, raw = digest_message(domain=domain, to=member.email, sender=sender, subject=mail.subject,
                                     toc=mail.text, entries=entries, now=due_at,  # dated when it is sent
                                     language=mail.language)
    async with transaction(engine) as connection:  # the writers' lock: an erasure is committed and seen now
        if not await _delivers(connection, conversation.id):
            log.info("digest for member %s (%s) not sent: the conversation was paused or closed", member.id, period)
            return False
        if email_key(member.email) not in (await current_addresses(connection, [conversation.id]))[conversation.id]:
            log.info("digest for member %s (%s) not sent: their address changed or they left", member.id, period)
            return False
        if not await keys.claim(connection, f"digest.{mode}:{member.id}:{period}", kind="digest",
                                pair_id=conversation.id, at=now):
            return False
        moved = await connection.execute(update(outbound).where(
            outbound.c.id.in_([r.id for r in rows]), outbound.c.state == "digest").values(state="digested"))
        if moved.rowcount != len(rows):
            raise _Taken()
        entry = await queue_outbound(connection, kind="notice", rcpt=member.email, raw=raw, out_message_id=message_id,
                                     now=due_at, domain=domain, pair_id=conversation.id, message_id=None)
        await events.record(connection, "digest.sent", now, pair_id=conversation.id, member=member.id, mode=mode,
                            period=period, outbound_id=entry, copies=[r.id for r in rows])
    return True


async def _delivers(connection: AsyncConnection, conversation_id: int) -> bool:
    """Whether the conversation's mail may go out now (read in the writer's transaction: a concern that paused
    it, or a close, since the sweep read it is seen here)."""
    status = await status_of(connection, conversation_id)
    return status is not None and status not in STOPPED
