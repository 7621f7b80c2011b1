"""One nudge sweep: every rule over every pair where mail may be due (and every active group, and every
group whose end is near or has passed: relay/nudges/rules/groups.py), and each due piece of mail sent
exactly once.

The sweep never holds the store for long: pairs and groups whose end has come are marked ended in short
transactions (relay/nudges/lifecycle.end_due); then the conversations where something may be due are
found by indexed queries (relay/nudges/due.py) and read a page at a time, planned in a thread
(relay/nudges/rules/: the rules name each notice; it is rendered once, only if it is sent, deferred or
listed, and sent as rendered), and each page's
mail written a few notices per transaction: for each, the key is claimed (relay/nudges/keys.py), the
notice (composed before the transaction, relay/notices/mime.py) queued and the event recorded, so the
mail, its key and its event commit together. A coordinator's escalations are gathered over the sweep and
sent as one mail listing every waiting mentee (up to ESCALATIONS_PER_DIGEST a mail, each mail with its
escalations' keys and events in one transaction); one escalation alone is the usual notice. A key someone
already claimed is skipped (another sweep, another relay instance); mail due during the recipient's quiet
hours is left for a later sweep. `dry_run` plans and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import notices
from relay.archive import chain
from relay.archive.export import delivered_copies, mbox_bytes
from relay.clock import Clock
from relay.config import Settings
from relay.contact_exchange import concerned
from relay.notices.programs import folder
from relay.nudges import due, keys
from relay.nudges.activity import read_activity
from relay.nudges.lifecycle import end_due
from relay.nudges.plan import Context, Planned
from relay.nudges.rules import cadence, ending, farewell, silence, unanswered
from relay.nudges.rules import groups as groups_rules
from relay.nudges.rules.groups import GroupContext
from relay.store import events
from relay.store.conversations import conversations_by_id, current_addresses, email_key
from relay.store.database import transaction
from relay.store.outbound import outbound_values
from relay.store.pairs import Pair, pairs_by_id
from relay.store.rawbytes import encoded
from relay.store.schema import events as event_table
from relay.store.schema import outbound as outbound_table

log = logging.getLogger("relay.nudges")

RULES: list[Callable[[Context], list[Planned]]] = [
    unanswered.plan, silence.plan, cadence.plan, ending.plan, farewell.plan]
BATCH = 200  # conversations read and planned at a time
MAILS_PER_COMMIT = 100  # notices (each with its key, event and chain entries) per write transaction
ESCALATION = "nudge.escalation"
# A coordinator's escalations of one sweep go in one mail (coordinator_unanswered_digest), at most this many
# to a mail: their keys, events and the mail commit in one transaction, which must stay short.
ESCALATIONS_PER_DIGEST = 50


@dataclass
class SweepResult:
    now: datetime
    dry_run: bool = False
    sent: list[Planned] = field(default_factory=list)  # (or, with dry_run, would be sent)
    deferred: list[Planned] = field(default_factory=list)  # due, but it is night for the recipient
    ended: list[int] = field(default_factory=list)  # pairs and groups whose end date passed in this sweep
    ended_groups: list[int] = field(default_factory=list)  # those of them that are groups

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "ended": self.ended,
                "sent": [p.as_dict() for p in self.sent], "deferred": [p.as_dict() for p in self.deferred]}

    def lines(self) -> list[str]:
        verb = "would send" if self.dry_run else "sent"
        found = [f"{'group' if pair_id in self.ended_groups else 'pair'} {pair_id} ended (its end date has passed)"
                 for pair_id in self.ended]
        found += [f"{verb} {p.describe()}" for p in self.sent]
        found += [f"quiet hours, later: {p.describe()}" for p in self.deferred]
        return found or [f"nothing due at {self.now.isoformat()}"]


async def _planned_pages(engine: AsyncEngine, settings: Settings, now: datetime,
                         batch: int) -> AsyncIterator[list[Planned]]:
    """What the rules plan, a page of `batch` conversations at a time: the due pairs (relay/nudges/due.py),
    then the active groups, each page read in one short read (pairs, members, activity, the pairs a concern
    was raised on) and planned after."""
    due_pairs = due.pairs_due(settings, now, limit=batch)
    for kind in ("pair", "group"):
        after = 0
        while True:
            async with engine.connect() as connection:
                if kind == "pair":
                    ids = await due.pair_ids(connection, due_pairs, after=after)
                    found: list[Any] = await pairs_by_id(connection, ids)
                else:
                    ids = await due.group_ids(connection, settings, now, after=after, limit=batch)
                    found = await conversations_by_id(connection, ids)
                activity = await read_activity(connection, [c.id for c in found])
                concerns = await concerned(connection, ids) if kind == "pair" else set()
            if not ids:
                break
            after = ids[-1]
            # planning (the rules) is pure CPU work: in a thread, so that the event loop keeps answering SMTP
            # sessions while a page is planned
            yield await asyncio.to_thread(_plan, settings, now, found, activity, concerns)


def _plan(settings: Settings, now: datetime, found: list[Any], activity: dict[int, Any],
          concerns: set[int]) -> list[Planned]:
    planned: list[Planned] = []
    for conversation in found:
        program = settings.programs.get(conversation.program_id)
        if program is None:
            continue
        if isinstance(conversation, Pair):
            context = Context(settings, program, conversation, activity[conversation.id], now,
                              concern=conversation.id in concerns)
            for rule in RULES:
                planned.extend(rule(context))
        else:  # each group rule looks at the group's status (active: nudges; near or past its end: endings)
            group_context = GroupContext(settings, program, conversation, activity[conversation.id], now)
            for group_rule in groups_rules.RULES:
                planned.extend(group_rule(group_context))
    return planned


async def plan_all(engine: AsyncEngine, settings: Settings, now: datetime, batch: int = BATCH) -> list[Planned]:
    """Everything due at `now` (every page; the sweep itself sends page by page)."""
    return [item async for page in _planned_pages(engine, settings, now, batch) for item in page]


def _rendered(item: Planned, attached: bool) -> notices.Rendered:
    """The item's notice: as planned, unless the conversation is attached to it (a farewell planned without
    knowing; its text says so)."""
    if item.values.get("conversation_attached", False) == attached:
        return item.rendered
    return notices.notice(item.template, item.language, folder=item.folder,
                          **{**item.values, "conversation_attached": attached})


async def _conversation(connection: AsyncConnection, settings: Settings, item: Planned,
                        ) -> list[tuple[bytes, str, str]]:
    """A pair's farewell's attachment when its program sends the conversation at the end: the record of the
    relationship, as the participant saw it (anonymised), as an mbox file; otherwise none (a group's farewell
    has none: the group's copies are every member's, private words between others included)."""
    if item.template != "farewell" or not settings.programs[item.program_id].send_conversation_at_end:
        return []
    copies = await delivered_copies(connection, item.pair_id)
    if not copies:
        return []
    return [(await asyncio.to_thread(mbox_bytes, copies), "application/mbox", f"conversation-{item.to_handle}.mbox")]


def _composed(settings: Settings, item: Planned, attachments: list[tuple[bytes, str, str]],
              dated: datetime) -> notices.Notice:
    """The item's notice as mail, dated `dated`."""
    return _as_mail(settings, item, _rendered(item, bool(attachments)), dated, attachments)


def _as_mail(settings: Settings, item: Planned, mail: notices.Rendered, dated: datetime,
             attachments: list[tuple[bytes, str, str]] | None = None) -> notices.Notice:
    """A rendered notice as mail from the item's program to its recipient, in its language, dated `dated`;
    a participant's answer goes to help@ (the coordinator's, as before, nowhere)."""
    domain = settings.relay.domain
    return notices.compose(domain=domain, program_name=settings.programs[item.program_id].name,
                           to=item.rcpt, subject=mail.subject, body=mail.text, html=mail.html, now=dated,
                           attachments=attachments, language=item.language,
                           reply_to=None if item.to_role == "coordinator" else notices.help_address(domain))


@dataclass
class _Mail:
    """A notice's outbound row, ready for its write transaction (the bytes already compressed:
    relay/store/rawbytes.py), with its chain link (the content hash of the bytes as composed)."""
    row: dict[str, Any]
    link: chain.Link


@dataclass
class _Ready:
    """A planned item made ready for its write transaction before it begins: its mail (None when a digest
    tells it: the digest is its chunk's one mail), its event row and that row's content hash for the chain,
    so that the transaction itself only claims keys, inserts and chains (the write lock is held that long)."""
    item: Planned
    mail: _Mail | None
    event: dict[str, Any]
    event_hash: str


def _mail(settings: Settings, notice: notices.Notice, queue_at: datetime, pair_id: int | None,
          message_id: str | None) -> _Mail:
    row = outbound_values(kind="notice", rcpt=notice.rcpt, raw=notice.raw, out_message_id=notice.message_id,
                          now=queue_at, domain=settings.relay.domain, pair_id=pair_id, message_id=message_id)
    return _Mail({**row, "raw": encoded(row["raw"])}, chain.outbound_link(row))


def _ready(settings: Settings, item: Planned, attachments: list[tuple[bytes, str, str]] | None, now: datetime,
           queue_at: datetime) -> _Ready:
    """`attachments` None: the item goes in a digest, it has no mail of its own (its own notice is still
    rendered, here in the composing thread: the sweep's result names it by its subject)."""
    mail = None
    _ = item.subject  # the notice rendered now, in this thread, not later on the event loop
    if attachments is not None:
        mail = _mail(settings, _composed(settings, item, attachments, queue_at), queue_at, item.pair_id,
                     item.message_id)
    event = events.event_values(item.kind, now, pair_id=item.pair_id, message_id=item.message_id, key=item.key,
                                to_handle=item.to_handle, passed_over=item.passed_over, **item.detail)
    return _Ready(item, mail, event, chain.content_hash("event", event))


def _digest(settings: Settings, items: list[Planned], now: datetime, queue_at: datetime,
            ) -> tuple[list[_Ready], _Mail]:
    """One coordinator's escalations (same program, address and language) as one mail listing each
    waiting mentee, and each escalation's event."""
    first = items[0]
    program = settings.programs[first.program_id]
    mail = notices.notice("coordinator_unanswered_digest", first.language, folder=folder(settings, program),
                          program_name=program.name, domain=settings.relay.domain,
                          items=[item.values for item in items])
    notice = _as_mail(settings, first, mail, queue_at)
    return [_ready(settings, item, None, now, queue_at) for item in items], _mail(settings, notice, queue_at,
                                                                                   None, None)


async def _compose_all(engine: AsyncEngine, settings: Settings, items: list[Planned], now: datetime,
                       queue_at: datetime) -> list[_Ready]:
    """The notices (their Date `queue_at`) and their rows, made before the write transaction: the farewell's
    record read first, then the rendering, MIME, compression and hashing in a thread, off the event loop
    that answers SMTP."""
    attachments: list[list[tuple[bytes, str, str]]] = []
    for item in items:
        if item.template == "farewell":
            async with engine.connect() as connection:
                attachments.append(await _conversation(connection, settings, item))
        else:
            attachments.append([])
    return await asyncio.to_thread(lambda: [_ready(settings, item, attached, now, queue_at)
                                            for item, attached in zip(items, attachments, strict=True)])


async def send_planned(connection: AsyncConnection, settings: Settings, item: Planned, now: datetime,
                       queue_at: datetime, *, attach_conversation: bool = True) -> bool:
    """Claim the item's key and queue its mail with its event; False when the key was claimed before.
    Also used for the farewells of a pair closed by hand (relay/endings.py) and of the partner of a person
    erased (relay/archive/person.py: `attach_conversation` False, their messages are erased too)."""
    for key in item.passed_over:
        await keys.claim(connection, key, kind=item.kind, pair_id=item.pair_id, at=now, sent=False)
    if not await keys.claim(connection, item.key, kind=item.kind, pair_id=item.pair_id, at=now,
                            anchor_at=item.anchor_at):
        return False
    attachments = await _conversation(connection, settings, item) if attach_conversation else []
    notice = _composed(settings, item, attachments, queue_at)
    await notices.queue(connection, notice, domain=settings.relay.domain, now=queue_at, pair_id=item.pair_id,
                        message_id=item.message_id)
    await events.record(connection, item.kind, now, pair_id=item.pair_id, message_id=item.message_id,
                        key=item.key, to_handle=item.to_handle, passed_over=item.passed_over, **item.detail)
    return True


async def _send_many(connection: AsyncConnection, chunk: list[_Ready], now: datetime,
                     digest: _Mail | None = None) -> list[Planned]:
    """In the caller's transaction, a statement per table for the whole chunk: claim the keys (the stages
    passed over as well), queue the notices whose key this sweep claimed (and the chunk's `digest`, when it
    claimed one of them), record their events, chain them. Returns the items sent (a key claimed before —
    another sweep, another instance — is skipped)."""
    # under the writers' lock (relay/store/database.py): an erasure has committed and is seen now, or it waits
    # for this transaction and then cancels what it queued
    chunk = await _still_addressed(connection, chunk)
    passed = [{"key": key, "kind": ready.item.kind, "pair_id": ready.item.pair_id, "at": now, "sent": 0,
               "anchor_at": None} for ready in chunk for key in ready.item.passed_over]
    await keys.claim_many(connection, passed)
    mine = await keys.claim_many(connection, [{"key": ready.item.key, "kind": ready.item.kind,
                                               "pair_id": ready.item.pair_id, "at": now, "sent": 1,
                                               "anchor_at": ready.item.anchor_at}
                                              for ready in chunk])
    sent = [ready for ready in chunk if ready.item.key in mine]
    if not sent:
        return []
    mails = [ready.mail for ready in sent if ready.mail is not None] + ([digest] if digest is not None else [])
    await connection.execute(outbound_table.insert(), [mail.row for mail in mails])
    # each event's id, known by its detail (which names its key: one per notice); RETURNING in the rows'
    # order would cost SQLite a statement per row
    query = event_table.insert().returning(event_table.c.id, event_table.c.detail)
    event_ids = {row.detail: row.id for row in await connection.execute(query, [ready.event for ready in sent])}
    links = [mail.link for mail in mails]
    links += sorted((chain.Link("event", str(event_ids[ready.event["detail"]]), ready.item.pair_id, now,
                                ready.event_hash) for ready in sent), key=lambda link: int(link.ref))
    await chain.append(connection, links)
    return [ready.item for ready in sent]


async def _still_addressed(connection: AsyncConnection, chunk: list[_Ready]) -> list[_Ready]:
    """The chunk without the mail to a member whose address is no longer theirs (erased, or gone from the
    conversation) since the sweep read it: its key stays free, and a later sweep plans from what is now."""
    now = await current_addresses(connection, sorted({ready.item.pair_id for ready in chunk
                                                      if ready.item.to_role != "coordinator"}))
    kept = []
    for ready in chunk:
        if ready.item.to_role != "coordinator" and email_key(ready.item.rcpt) not in now[ready.item.pair_id]:
            log.info("nudge %s not sent: the address it was planned for is no longer the member's", ready.item.key)
        else:
            kept.append(ready)
    return kept


def _reported(items: list[Planned]) -> list[Planned]:
    return [item.reported() for item in items]


async def run(settings: Settings, engine: AsyncEngine, clock: Clock, *, dry_run: bool = False,
              queue_at: datetime | None = None, batch: int = BATCH, mails_per_commit: int = MAILS_PER_COMMIT,
              escalations_per_digest: int = ESCALATIONS_PER_DIGEST,
              between: Callable[[], Awaitable[bool]] | None = None,
              turn: Callable[[], AbstractAsyncContextManager[Any]] | None = None) -> SweepResult:
    """Sweep as if the time were clock.now(); mail is queued for delivery at `queue_at` and dated then
    (default: that time; `nudges run --now` passes the real time, so what it sends goes out at once and its
    Date is the real send time: receivers score a Date in the future as spam).

    Pages of `batch` conversations are read and planned in turn; a page's mail is written
    `mails_per_commit` notices per transaction (each notice with its key and event), so intake, which
    shares the store's write lock, never waits long behind a sweep. For the sweep in a process of its own
    (relay/nudges/child.py): `turn`, if given, is held around each write transaction (its turn among
    `serve`'s writers), and `between` is awaited after each; when it returns False the sweep ends there,
    everything it wrote committed."""
    now = clock.now()
    result = SweepResult(now=now, dry_run=dry_run)
    ended = await end_due(engine, settings, now, dry_run=dry_run, batch=batch)
    result.ended = [conversation_id for conversation_id, _ in ended]
    result.ended_groups = [conversation_id for conversation_id, kind in ended if kind == "group"]

    async def write(chunk: list[_Ready], digest: _Mail | None = None) -> bool:
        """One write transaction; False when the sweep must end here (`between`)."""
        async with turn() if turn is not None else contextlib.nullcontext(), transaction(engine) as connection:
            result.sent.extend(map(Planned.reported, await _send_many(connection, chunk, now, digest)))
        return between is None or await between()

    async def write_escalations(items: list[Planned]) -> bool:
        if len(items) == 1:  # alone, it is the usual notice about its pair
            return await write(await _compose_all(engine, settings, items, now, queue_at or now))
        return await write(*await asyncio.to_thread(_digest, settings, items, now, queue_at or now))

    # each coordinator's escalations, gathered over the pages: (program, address, language) -> items
    escalations: dict[tuple[str, str, str], list[Planned]] = {}
    async for planned in _planned_pages(engine, settings, now, batch):
        async with engine.connect() as connection:
            taken = await keys.claimed(connection, [p.key for p in planned])
        due_now, deferred, listed = [], [], []
        for item in planned:
            if item.key in taken:
                continue
            if item.quiet:
                deferred.append(item)
            elif dry_run:
                listed.append(item)
            elif item.kind == ESCALATION:
                escalations.setdefault((item.program_id, item.rcpt, item.language), []).append(item)
            else:
                due_now.append(item)
        if deferred or listed:  # their subjects, for the result's lines: rendered in a thread, as planning is
            result.deferred.extend(await asyncio.to_thread(_reported, deferred))
            result.sent.extend(await asyncio.to_thread(_reported, listed))
        for start in range(0, len(due_now), mails_per_commit):
            items = due_now[start:start + mails_per_commit]
            if not await write(await _compose_all(engine, settings, items, now, queue_at or now)):
                return _finished(result, dry_run)
        for items in escalations.values():
            while len(items) >= escalations_per_digest:
                full = items[:escalations_per_digest]
                del items[:escalations_per_digest]
                if not await write_escalations(full):
                    return _finished(result, dry_run)
    for items in escalations.values():
        if items and not await write_escalations(items):
            break
    return _finished(result, dry_run)


def _finished(result: SweepResult, dry_run: bool) -> SweepResult:
    if result.sent and not dry_run:
        log.info("nudge sweep at %s: %d mail(s) sent", result.now.isoformat(), len(result.sent))
    return result
