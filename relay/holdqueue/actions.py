"""A moderator's decisions on held mail: release (with approvals) and reject (with a reason).

Used by the CLI and the console alike (the CLI acts as relay.safeguarding.approvals allows: a Decider). Each
decision is one transaction: the hold's state changes only if it is still held, so a message released twice is
delivered once. A release re-enters the message's line at anonymise (relay.pipeline.release) and queues it; a
rejection queues the sender's notice. Every approval, release and rejection is an event with the moderator's
name and reason.

Anonymising the copy a release delivers is CPU work on a message of up to the size limit, so it runs off the
event loop (`offload`: the relay's worker processes from the console, a thread from the CLI) and before the
decision's transaction, which then only checks that nothing changed meanwhile (the hold, the newest edit)
and writes: the store's write lock is not held while a message is being rewritten, unless a moderator's edit
came in between (the copy is then rebuilt inside the transaction, from the edit).

A release delivers nothing while the conversation is paused (a concern: until `pair resume` / `group resume`) or
once it is closed or ended (mail to it is archived, not delivered): it is refused with `Stopped`, worded for
the moderator, and the message stays held, to be escalated or rejected (`stopped` says why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import digests, ids, notices
from relay.anonymize.headers import header_text, message_ids
from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.clock import Clock
from relay.communities import bystanders
from relay.config import Settings
from relay.fanout import face, identity, recipients_of
from relay.holdqueue.notify import sender_notice
from relay.moderation.findings import Finding
from relay.moderation.policy import PolicyBook
from relay.pipeline import GroupCopy, release_group
from relay.store import events
from relay.store import held as held_store
from relay.store.conversations import ENDED, PAUSED, Conversation, get_conversation
from relay.store.database import transaction
from relay.store.edits import latest_edit, latest_edit_id
from relay.store.messages import get_message, group_thread_maps, record_thread_id
from relay.store.outbound import queue_outbound
from relay.store.pairs import Member, Pair
from relay.workers.tasks import ReleaseJob, release_message

T = TypeVar("T")
Offload = Callable[..., Awaitable[Any]]  # offload(fn, *args) -> fn(*args), computed off the event loop


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """The default way off the loop: a thread (the CLI, and a relay without worker processes)."""
    return await asyncio.to_thread(fn, *args)


class ReviewError(Exception):
    """The decision cannot be made (no such held message); worded for the moderator."""


class Stopped(ReviewError):
    """A release of mail whose conversation is paused, closed or ended: nothing was done."""


def stopped(conversation: Conversation) -> str | None:
    """Why a release of this conversation's held mail is refused now, worded for the moderator; None when it
    may be released."""
    if conversation.is_group:
        name = f"The {conversation.kind} {conversation.name or conversation.id} (id {conversation.id})"
        receivers, command = "its former members", f"mentor-relay group resume {conversation.id}"
    else:
        name = f"Pair {conversation.id}"
        receivers, command = "the former partner", f"mentor-relay pair resume {conversation.id}"
    if conversation.status == PAUSED:
        return (f"{name} is paused after a concern: nothing of it is delivered until a coordinator resumes it "
                f"({command}). Nothing was done; the message stays held. Release it after the resume, or escalate "
                "or reject it now.")
    if conversation.status in ENDED:
        how = "was closed" if conversation.status == "closed" else "has ended (its end date passed)"
        return (f"{name} {how}: its mail is archived, not delivered, and a release would send this message to "
                f"{receivers}. Nothing was done; the message stays held and archived. Escalate it to the "
                "safeguarding lead, or reject it to dismiss it (the sender is told your reason).")
    return None


@dataclass(frozen=True)
class Outcome:
    status: str  # released | approved | rejected | already-released | already-rejected
    approvals: list[str]
    needed: int

    def describe(self, message_id: str) -> str:
        if self.status == "approved":
            return (f"{message_id}: release approved by {', '.join(self.approvals)} "
                    f"({len(self.approvals)} of {self.needed}); it is delivered after the next approval")
        if self.status.startswith("already-"):
            return f"{message_id}: was {self.status.removeprefix('already-')} already; nothing changed"
        return f"{message_id}: {self.status}"


def _identity(member: Member, domain: str) -> Identity:
    return Identity(email=member.email, name=member.name, alias_address=member.alias_address(domain),
                    handle=member.handle, nicknames=member.nicknames, other_emails=member.other_emails,
                    language=member.language)


async def load_any(connection: AsyncConnection, message_id: str) -> tuple[dict[str, Any], Any, Conversation]:
    """A held item with its archived message and its conversation (a pair or a group)."""
    item = await held_store.get_held(connection, message_id)
    if item is None:
        raise ReviewError(f"no held message with id {message_id}")
    row = await get_message(connection, message_id)
    conversation = await get_conversation(connection, item["pair_id"])
    assert row is not None and conversation is not None
    return item, row, conversation


def _redactions(item: dict[str, Any]) -> list[Finding]:
    """What the policy would redact, and what it would have rejected had an urgent finding not held the
    message for a person: neither passes on unedited."""
    return [Finding(**{k: r[k] for k in ("rule", "kind", "match", "start", "end")})
            for r in item["reasons"] if r.get("action") in ("redact", "reject") and r.get("start", -1) >= 0]


async def _group_copies(settings: Settings, connection: AsyncConnection, item: dict[str, Any], row: Any,
                        group: Conversation, now: datetime,
                        proposed: bytes | None = None) -> list[tuple[Member, GroupCopy, bytes]]:
    """Every copy a release of a group message writes: one per recipient, threads mapped for each,
    anonymised now, redacted as recorded at hold time (or built from the moderator's newest edit; from
    `proposed`, an edit not saved yet, when given)."""
    domain = settings.relay.domain
    sender = group.member_by_id(row.sender_id)
    assert sender is not None
    addressed = group.member_by_id(row.recipient_id)  # a private word's recipient (None: the group)
    recipients = recipients_of(group, sender, addressed)
    if not recipients:
        return []
    edited = proposed if proposed is not None else await latest_edit(connection, row.id)
    raw = edited if edited is not None else row.raw
    original = parse(row.raw)
    refs = message_ids(original, "In-Reply-To") + message_ids(original, "References")
    maps = await group_thread_maps(connection, group.id, sender.id, [r.id for r in recipients], refs)
    copies = [GroupCopy(ids.message_id(domain), maps[r.id]) for r in recipients]
    also = await bystanders(connection, group, sender.email_key)  # the sender's programs' other participants
    people = [identity(m, domain) for m in (*group.members, *also)]
    own = people[[m.id for m in group.members].index(sender.id)]
    raws = release_group(raw, sender=own, members=people, face=face(settings, group, sender, addressed),
                         copies=copies, now=now, domain=domain,
                         redactions=[] if edited is not None else _redactions(item))
    return list(zip(recipients, copies, raws, strict=True))


async def _release_group(settings: Settings, connection: AsyncConnection, item: dict[str, Any], row: Any,
                         group: Conversation, now: datetime) -> None:
    """Queue every copy of a released group message, once."""
    domain = settings.relay.domain
    sender = group.member_by_id(row.sender_id)
    assert sender is not None
    for recipient, copy, body in await _group_copies(settings, connection, item, row, group, now):
        await record_thread_id(connection, group.id, row.id, sender.role, row.original_message_id,
                               copy.new_message_id, sender_id=sender.id, recipient_id=recipient.id)
        await queue_outbound(connection, kind="relay", rcpt=recipient.email, raw=body,
                             out_message_id=copy.new_message_id, now=now, domain=domain, pair_id=group.id,
                             message_id=row.id, state=digests.copy_state(settings, group, recipient,
                                                                         private=row.recipient_id is not None))


async def preview_copy(settings: Settings, connection: AsyncConnection, item: dict[str, Any], row: Any,
                       conversation: Conversation, now: datetime, offload: Offload = in_thread,
                       proposed: bytes | None = None) -> tuple[Member | None, bytes | None]:
    """The copy a release would deliver, as a moderator previews it, and whose copy it is: the partner's
    for a pair, the first recipient's for a group (the copies differ only in their message ids). Nothing is
    written. (None, None) when a group message has nobody left to receive it. `proposed`: the copy of an
    edit not saved yet (relay.console.redaction reads it before saving it)."""
    if isinstance(conversation, Pair):
        _, recipient = _roles(conversation, row)
        return recipient, (await _build_copy(settings, connection, item, row, conversation,
                                             ids.message_id(settings.relay.domain), now, offload, proposed)).raw
    copies = await _group_copies(settings, connection, item, row, conversation, now, proposed)
    return (copies[0][0], copies[0][2]) if copies else (None, None)


def _roles(pair: Pair, row: Any) -> tuple[Member, Member]:
    sender = pair.mentor if pair.mentor.id == row.sender_id else pair.mentee
    return sender, pair.partner_of(sender)


@dataclass(frozen=True)
class _Copy:
    """A release's copy, built before the decision's transaction from the newest edit as it was then."""

    edited: bytes | None
    new_message_id: str
    raw: bytes


async def delivered_copy(settings: Settings, connection: AsyncConnection, item: dict[str, Any], row: Any, pair: Pair,
                         new_message_id: str, now: datetime, offload: Offload = in_thread) -> bytes:
    """The copy a release delivers: anonymised now, redacted as recorded at hold time. When a moderator
    edited the message (redact-and-release), the copy is built from the newest edit instead."""
    return (await _build_copy(settings, connection, item, row, pair, new_message_id, now, offload)).raw


async def _build_copy(settings: Settings, connection: AsyncConnection, item: dict[str, Any], row: Any, pair: Pair,
                      new_message_id: str, now: datetime, offload: Offload, proposed: bytes | None = None) -> _Copy:
    domain = settings.relay.domain
    sender, recipient = _roles(pair, row)
    refs = await asyncio.to_thread(_refs, row.raw)  # parsing the header of a large message: off the loop too
    mapping = (await group_thread_maps(connection, pair.id, sender.id, [recipient.id], refs))[recipient.id]
    edited = proposed if proposed is not None else await latest_edit(connection, row.id)
    also = await bystanders(connection, pair, sender.email_key)  # the sender's programs' other participants
    job = ReleaseJob(sender=_identity(sender, domain), recipient=_identity(recipient, domain), thread_map=mapping,
                     new_message_id=new_message_id, now=now, domain=domain,
                     redactions=[] if edited is not None else _redactions(item),
                     others=tuple(_identity(m, domain) for m in also))
    raw = await offload(release_message, edited if edited is not None else bytes(row.raw), job)
    return _Copy(edited, new_message_id, raw)


def _refs(raw: bytes) -> list[str]:
    original = parse(raw)
    return message_ids(original, "In-Reply-To") + message_ids(original, "References")


async def _copy_ahead(settings: Settings, engine: AsyncEngine, message_id: str, now: datetime,
                      offload: Offload) -> _Copy | None:
    """The copy this release will deliver if it is the deciding one, built outside any write transaction;
    None when it will not be (not held, a group's, or approvals still missing after this one)."""
    async with engine.connect() as connection:
        item, row, pair = await load_any(connection, message_id)
        if item["state"] != "held" or not isinstance(pair, Pair) or stopped(pair) is not None:
            return None
        if len(item["approvals"]) + 1 < item["release_requires"]:
            return None
        return await _build_copy(settings, connection, item, row, pair, ids.message_id(settings.relay.domain),
                                 now, offload)


class Decider(Protocol):
    """Someone whose name must first be checked against the held item, inside the decision's transaction:
    the command line (relay.safeguarding.approvals.CliActor). The console and the API pass the signed-in
    account's name as a plain string."""

    from_cli: bool

    async def name_for(self, connection: AsyncConnection, item: dict[str, Any], *, approving: bool) -> str:
        """The name to record; raises ReviewError when this decider may not make the decision."""
        ...


async def _actor(connection: AsyncConnection, item: dict[str, Any], moderator: str | Decider, *,
                 approving: bool) -> str:
    return moderator if isinstance(moderator, str) else await moderator.name_for(connection, item,
                                                                                   approving=approving)


async def release(settings: Settings, engine: AsyncEngine, clock: Clock, message_id: str,
                  moderator: str | Decider, offload: Offload = in_thread, seen_edit: int | None = None) -> Outcome:
    """Approve, and release when the approvals reach the hold's count. `seen_edit`: the newest edit the
    moderator was shown (0: none); when given and the message was edited since, nothing is done (ReviewError):
    an approval counts for the text its giver saw (relay.console.redaction). Neither approves nor releases
    while the conversation is paused, closed or ended (Stopped)."""
    domain = settings.relay.domain
    now = clock.now()
    ahead = await _copy_ahead(settings, engine, message_id, now, offload)
    async with transaction(engine) as connection:  # the writers' lock: an erasure is committed and seen
        item, row, pair = await load_any(connection, message_id)
        if item["state"] != "held":
            return Outcome(f"already-{item['state']}", item["approvals"], item["release_requires"])
        refused = stopped(pair)  # read in the writers' transaction: a pause or a close meanwhile is seen
        if refused is not None:
            raise Stopped(refused)
        if seen_edit is not None and (await latest_edit_id(connection, message_id) or 0) != seen_edit:
            raise ReviewError("A moderator edited this message after you opened it: nothing was done. Read the "
                              "edited text and decide again.")
        from_cli = not isinstance(moderator, str) and moderator.from_cli
        moderator = await _actor(connection, item, moderator, approving=True)
        approvals = await held_store.add_approval(connection, item, moderator, from_cli=from_cli)
        if len(approvals) < item["release_requires"]:
            await events.record(connection, "approval", now, actor=moderator, pair_id=pair.id,
                                    message_id=message_id, approvals=approvals, needed=item["release_requires"])
            return Outcome("approved", approvals, item["release_requires"])
        if not isinstance(pair, Pair):
            if not await held_store.close_hold(connection, message_id, "released", moderator, now):
                return Outcome("already-released", approvals, item["release_requires"])
            await _release_group(settings, connection, item, row, pair, now)
            await events.record(connection, "released", now, actor=moderator, pair_id=pair.id,
                                message_id=message_id, approvals=approvals)
            return Outcome("released", approvals, item["release_requires"])
        sender, recipient = _roles(pair, row)
        if ahead is None or await latest_edit(connection, row.id) != ahead.edited:  # an edit came in between
            ahead = await _build_copy(settings, connection, item, row, pair, ids.message_id(domain), now, offload)
        new_id, raw = ahead.new_message_id, ahead.raw
        if not await held_store.close_hold(connection, message_id, "released", moderator, now):
            return Outcome("already-released", approvals, item["release_requires"])
        await record_thread_id(connection, pair.id, message_id, sender.role, row.original_message_id, new_id,
                               sender_id=sender.id, recipient_id=recipient.id)
        await queue_outbound(connection, kind="relay", rcpt=recipient.email, raw=raw, out_message_id=new_id,
                             now=now, domain=domain, pair_id=pair.id, message_id=message_id)
        await events.record(connection, "released", now, actor=moderator, pair_id=pair.id,
                                message_id=message_id, approvals=approvals)
    return Outcome("released", approvals, item["release_requires"])


async def reject(settings: Settings, engine: AsyncEngine, clock: Clock, message_id: str, moderator: str | Decider,
                 reason: str) -> Outcome:
    now = clock.now()
    policies = PolicyBook(settings.policies_dir)
    async with transaction(engine) as connection:
        item, row, pair = await load_any(connection, message_id)
        if item["state"] != "held":
            return Outcome(f"already-{item['state']}", item["approvals"], item["release_requires"])
        moderator = await _actor(connection, item, moderator, approving=False)
        if not await held_store.close_hold(connection, message_id, "rejected", moderator, now, reason):
            return Outcome("already-rejected", item["approvals"], item["release_requires"])
        sender = pair.member_by_id(row.sender_id)
        assert sender is not None
        original = parse(row.raw)
        notice = sender_notice(settings, kind="rejected", policy=policies.get(item["policy"]),
                               program_id=pair.program_id, to=sender.email, subject=row.subject,
                               in_reply_to=header_text(original, "Message-ID"), now=now, reason=reason,
                               reader=sender)
        if notice is not None:
            await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id,
                                message_id=message_id)
        await events.record(connection, "rejected", now, actor=moderator, pair_id=pair.id,
                                message_id=message_id, reason=reason, sender_notified=notice is not None)
    return Outcome("rejected", item["approvals"], item["release_requires"])
