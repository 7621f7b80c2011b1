"""A stranger's mail to an alias: refused, but read first, so that a disclosure from an unknown address still
reaches a person.

Only the enrolled partner (or a group's members) may write to an alias (invariant 3): anyone else gets 550 at
DATA, after the whole message came in (RCPT cannot know who is writing: the From: is in the message). A child
whose phone was taken may write from a school or a parent's account, though, and what they write must not
vanish with the refusal. So before the 550 the message is read as a delivered copy would be (a worker process,
relay/workers/tasks.read_stranger): the conversation's members' real names and addresses are scrubbed, and the
conversation's policy inspects the scrubbed copy. If it shows an urgent (safeguarding) finding, the program's
safeguarding lead (the coordinator without one) gets an URGENT "UNVERIFIED SENDER" mail naming the pair or
group and the member written to (handles), the sender's address as given, the findings and the scrubbed text,
and saying that nothing was delivered. The refusal stands either way: nothing is held, nothing is delivered,
nothing is sent to the stranger beyond the 550.

The sender's address goes to the lead as given. Invariant 2 keeps participants' real identities from each other
and staff mail about participants names handles; this address is not an enrolled identity, it is what an
unknown writer gave about themselves, and it goes to the one person whose duty is to act on a disclosure,
never to a participant. Without it the lead could not reach a child who has no other channel, nor report an
adult who writes to a child's alias.

A message that cannot be read whole (a MIME structure the parser gives up on, over its CPU budget) is read again
for its subject and text/plain parts only (tasks.read_stranger_text), scrubbed the same way, before giving up.

Bounds, so that reading costs a spammer's mail little: only the first READ_AT_MOST bytes are read (a phone's
text comes first; a text part after a large attachment is not read), the worker's CPU budget applies as to any
message, and a session and a client address have only so many messages read (smtp.stranger_reads_per_session,
smtp.stranger_reads_per_ip_per_minute, kept by relay/smtp/handler.py): past them the 550 stands unread (the
record says `read: not read: ...`). A stranger's refusal never ends a session (a front-end MTA carries members'
mail on the same connection). One alias pages the lead about one sender (From: address) at most once per
ALERT_EVERY, and one conversation (pair or group) at most ALERTS_PER_CONVERSATION times per ALERT_EVERY whoever
the senders (a flood from many addresses; a page is a notice key claimed like the sender's, so two relays on one
store never exceed it); later ones are only recorded, each as a `stranger_alert_folded` event too, the last page
of the hour says so and the next one counts them. The record: the `refused` event (reason `stranger`) carries the urgent
kinds found and whether the lead was told; each alert is a `stranger_alert` event with who was told, the
findings and the scrubbed text (the safeguarding sweep, relay/safeguarding/sweep.py, reports an alert that did
not arrive to the coordinator and the policy's moderators, as for held items).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.inbound.context import Context
from relay.inbound.refusals import Refusal
from relay.nudges import keys
from relay.safeguarding import notices
from relay.store import events
from relay.store.conversations import Conversation, Member, email_key
from relay.store.held import STRANGER_ALERT
from relay.store.outbound import queue_outbound
from relay.store.schema import events as event_table
from relay.store.schema import notice_keys
from relay.workers import tasks

if TYPE_CHECKING:
    from relay.anonymize.scrub import Identity

log = logging.getLogger("relay.intake")

READ_AT_MOST = 256 * 1024  # bytes of a stranger's message that are read for a safeguarding sign
ALERT_EVERY = timedelta(hours=1)  # at most one alert per alias (or group) and sender address in this time
ALERT_KIND = STRANGER_ALERT  # the safeguarding sweep finds the alerts by it
# Asked before a read: None when the message may be read (the read is counted), else why not (relay/smtp/handler.py)
ReadGate = Callable[[], str | None]
# At most this many alerts per conversation (pair or group) in ALERT_EVERY, whoever the senders: a child may try
# from two addresses, a flood of senders pages the lead no more than this; the rest is recorded (FOLDED_KIND).
ALERTS_PER_CONVERSATION = 3
FOLDED_KIND = "stranger_alert_folded"
SENDER_TOLD = "one alert an hour already sent"
CONVERSATION_TOLD = f"this conversation's {ALERTS_PER_CONVERSATION} alerts an hour already sent"


async def refuse(context: Context, raw: bytes, refusal: Refusal, *, conversation: Conversation,
                 recipient: Member | None, people: tuple[Identity, ...], inspection: dict[str, Any],
                 header_from: str, detail: dict[str, Any], reads: ReadGate | None = None) -> Refusal:
    """Read the refused message for a safeguarding sign, tell the lead when it shows one (at most once per
    ALERT_EVERY for this alias and sender), record the refusal and hand it back to be raised. `people`: the
    members whose identities are scrubbed (the one the stranger claims to be first, then the one written to);
    `inspection`: the policy's context for the conversation (relay/inbound/partner.inspection_context); `reads`:
    the session's and client's read budgets (past them the message is refused unread, and recorded so)."""
    not_read = reads() if reads is not None else None
    if not_read is not None:
        return await context.refuse(refusal, pair_id=conversation.id, header_from=header_from,
                                    read=f"not read: {not_read}", **detail)
    now = context.clock.now()
    policy = context.policy_of(conversation)
    job = tasks.StrangerJob(people=people, now=now, domain=context.domain, policy=policy.name, context=inspection)
    record: dict[str, Any] = {}
    read: dict[str, str] = {}  # how it was read, when not whole
    try:
        reading = await context.pool.run(tasks.read_stranger, raw[:READ_AT_MOST], job)
    except Exception as exc:  # unreadable, over its budget, a worker lost: its subject and plain text are read
        log.warning("a stranger's message to %s could not be read whole for safeguarding signs (%s); its text is "
                    "read instead", detail.get("rcpt"), exc)
        read = {"read": f"text only: {exc}"}
        try:
            reading = await context.pool.run(tasks.read_stranger_text, raw[:READ_AT_MOST], job)
        except Exception as again:  # refused as before, and said so
            log.warning("nor its text: %s", again)
            reading, read = None, {"read": f"not read: {exc}; its text not either: {again}"}
    if reading is not None and reading.findings:
        kinds = sorted({str(f.get("kind") or f.get("rule")) for f in reading.findings})
        key = alert_key(conversation, recipient, header_from)

        async def alert(connection: AsyncConnection) -> tuple[list[str], str]:
            if not await claim(connection, key, conversation.id, now):
                return [], SENDER_TOLD
            page = await claim_page(connection, conversation.id, now)
            if page is None:  # the conversation's pages this hour are used: recorded only, the sender not marked
                await connection.execute(update(notice_keys).where(notice_keys.c.key == key)
                                         .values(at=now - ALERT_EVERY))
                await events.record(connection, FOLDED_KIND, now, pair_id=conversation.id, rcpt=detail.get("rcpt"),
                                    header_from=header_from, signs=kinds)
                return [], CONVERSATION_TOLD
            mails = notices.stranger_alert(
                context.settings, conversation, recipient, sender=header_from,
                envelope=detail.get("mail_from") if not _same(detail.get("mail_from"), header_from) else None,
                findings=reading.findings, subject=reading.subject, text=reading.text, now=now,
                folded=await folded_since_last_alert(connection, conversation.id),
                last=page.last, pages=ALERTS_PER_CONVERSATION)
            outbound_ids = [await queue_outbound(connection, kind="notice", rcpt=mail.rcpt, raw=mail.raw,
                                                 out_message_id=mail.message_id, now=now, domain=context.domain,
                                                 pair_id=conversation.id, message_id=None) for mail in mails]
            await events.record(connection, ALERT_KIND, now, pair_id=conversation.id, rcpt=detail.get("rcpt"),
                                header_from=header_from, mail_from=detail.get("mail_from"),
                                to=[mail.rcpt for mail in mails], outbound_ids=outbound_ids,
                                findings=[{k: f.get(k) for k in ("rule", "kind", "match")} for f in reading.findings],
                                subject=reading.subject, text=reading.text)
            return [mail.rcpt for mail in mails], ""

        told: list[str] = []
        why_not = "the alert could not be queued"
        try:
            told, why_not = await context.committer.run(alert)
        except Exception:  # the refusal still stands; the record below says nobody was told
            log.exception("could not queue the safeguarding alert about a stranger's message")
        if told:
            context.on_queued()
        record = {"signs": kinds, "alerted": told} if told else {"signs": kinds, "alerted": [],
                                                                 "not_alerted": why_not}
        log.warning("stranger's message to %s shows %s; lead %s", detail.get("rcpt"), kinds,
                    f"told ({', '.join(told)})" if told else f"not told: {why_not}")
    return await context.refuse(refusal, pair_id=conversation.id, header_from=header_from, **record, **read,
                                **detail)


def _same(envelope: str | None, header_from: str) -> bool:
    return envelope is None or email_key(envelope) == email_key(header_from)


def alert_key(conversation: Conversation, recipient: Member | None, header_from: str) -> str:
    """The rate limit's key: the alias (a member's in a pair or group, or the group's) and the sender's address,
    hashed (the key outlives the events an erasure cleans)."""
    sender = keys.address_digest(header_from)
    alias = f"m{recipient.id}" if recipient is not None else f"g{conversation.id}"
    return f"{ALERT_KIND}:{alias}:{sender}"


async def claim(connection: AsyncConnection, key: str, pair_id: int, now: datetime) -> bool:
    """Whether an alert may go now: the key is new, or its last alert is ALERT_EVERY old (keys.claim_every: two
    sessions at once send one)."""
    return await keys.claim_every(connection, key, kind=ALERT_KIND, pair_id=pair_id, at=now, every=ALERT_EVERY)


@dataclass(frozen=True)
class Page:
    """One of a conversation's ALERTS_PER_CONVERSATION pages, claimed; `last`: no other is free now."""

    slot: int
    last: bool


def page_keys(conversation_id: int) -> list[str]:
    """The conversation's page keys, as keys.claim_slot names them."""
    return [f"{_pages(conversation_id)}:{slot}" for slot in range(ALERTS_PER_CONVERSATION)]


def _pages(conversation_id: int) -> str:
    return f"{ALERT_KIND}:c{conversation_id}:page"


async def claim_page(connection: AsyncConnection, conversation_id: int, now: datetime) -> Page | None:
    """One of the conversation's pages for this hour, or None when all were used within ALERT_EVERY. Each page is a
    notice key claimed as an alert's (`claim`: an insert, or a conditional update of a key ALERT_EVERY old), so
    two sessions or two relays at once never take the same one, and no ALERT_EVERY window holds more pages than
    there are keys."""
    slot = await keys.claim_slot(connection, _pages(conversation_id), ALERTS_PER_CONVERSATION,
                                 kind=ALERT_KIND, pair_id=conversation_id, at=now, every=ALERT_EVERY)
    if slot is None:
        return None
    fresh = (await connection.execute(select(func.count()).select_from(notice_keys).where(
        notice_keys.c.key.in_(page_keys(conversation_id)), notice_keys.c.at > now - ALERT_EVERY))).scalar_one()
    return Page(slot, last=int(fresh) >= ALERTS_PER_CONVERSATION)


async def folded_since_last_alert(connection: AsyncConnection, conversation_id: int) -> int:
    """How many messages with a sign to this conversation were only recorded since its last alert."""
    last = (await connection.execute(select(func.max(event_table.c.at)).where(
        event_table.c.pair_id == conversation_id, event_table.c.kind == ALERT_KIND))).scalar_one()
    query = select(func.count()).select_from(event_table).where(
        event_table.c.pair_id == conversation_id, event_table.c.kind == FOLDED_KIND)
    if last is not None:
        query = query.where(event_table.c.at >= last)
    return int((await connection.execute(query)).scalar_one() or 0)
