"""The archive of inbound messages and the thread-id map: one accepted message is one transaction.

Each stored message, its events and its outbound copies are chained into the archive's hash chain
(relay.archive.chain) in the same transaction; a group-commit batch appends its entries at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.archive import chain
from relay.store import events as event_store
from relay.store import held as held_store
from relay.store.database import take_write_lock
from relay.store.events import event_values
from relay.store.outbound import outbound_values
from relay.store.schema import events, held, members, messages, outbound, pairs, thread_ids


@dataclass
class OutboundEntry:
    rcpt: str
    out_message_id: str
    raw: bytes
    kind: str = "relay"  # relay | notice
    recipient_id: int | None = None  # the member a group copy goes to (a pair's: Accepted.recipient_id)
    state: str = "queued"  # or "digest": held back for the recipient's digest (relay/digests/)


@dataclass
class HoldEntry:
    program_id: str
    policy: str
    reasons: list[dict[str, Any]]
    release_requires: int
    notified: bool  # moderators were told at once (a notice is among the entries)
    severity: str = "normal"  # urgent: a safeguarding sign (relay/safeguarding)
    rejected: str | None = None  # an automatic rejection, recorded in the queue's history with this reason


@dataclass(frozen=True)
class Basis:
    """What a message was taken in on, checked again in the transaction that writes it: the members it names
    (id and address, none of them gone from their conversation) and their conversations' status.

    Intake reads the conversation at RCPT (or remembers it for up to ALIAS_TTL, relay/inbound/aliases.py) and
    writes at the end of DATA; meanwhile another process may close the pair, pause it or erase a person
    (`pair close`, `person erase`, a concern, a sweep), and the relay's memory cannot know. A message decided
    on what no longer holds is not written (its copy would go to an erased person's real address, or a closed
    pair's mail would be delivered); intake answers 451, the sender's server tries again, and the conversation
    as it is now decides."""

    members: tuple[tuple[int, str, str], ...]  # (member id, address, their conversation's status)


def basis(status: str, *people: Any) -> Basis:
    """The basis of a message to a conversation in `status` naming `people` (relay/store/conversations.Member)."""
    return Basis(tuple((person.id, person.email, status) for person in people))


def enrolments_basis(enrolments: Any) -> Basis:
    """The basis of a message about each (conversation, member) of `enrolments` (a program address's)."""
    return Basis(tuple((member.id, member.email, conversation.status) for conversation, member in enrolments))


@dataclass
class Accepted:
    """Everything one accepted message writes: archive row, decision, thread ids, queue entry."""

    id: str
    pair_id: int
    sender_id: int
    sender_role: str
    recipient_id: int | None  # None: every other member of a group (the copies say who)
    envelope_from: str
    remote_addr: str | None
    original_message_id: str | None
    body_hash: str
    subject: str | None
    raw: bytes
    decision: str
    reasons: list[dict[str, Any]]
    received_at: datetime
    outbound: OutboundEntry | None
    duplicate_window: timedelta
    domain: str
    hold: HoldEntry | None = None
    notices: list[OutboundEntry] = field(default_factory=list)
    extra_events: list[dict[str, Any]] = field(default_factory=list)
    copies: list[OutboundEntry] = field(default_factory=list)  # a group message: one per recipient
    basis: Basis | None = None  # None: nothing to check again (not a member's mail to a conversation)
    staff_subject: str | None = None  # what staff mail may quote of the subject (relay.hiding.staff_subject)


@dataclass(frozen=True)
class AcceptOutcome:
    id: str
    duplicate: bool
    changed: bool = False  # not written: its basis no longer held (Basis)

    @property
    def written(self) -> bool:
        """The message was stored now (neither an earlier copy's resend nor refused for a change)."""
        return not (self.duplicate or self.changed)


def _retry_key(item: Accepted) -> tuple[int, str, str] | None:
    return (item.sender_id, item.original_message_id, item.body_hash) if item.original_message_id else None


async def _changed(connection: AsyncConnection, items: list[Accepted]) -> set[str]:
    """The ids of the items whose basis no longer holds: a conversation's status changed, or a member they
    name changed address (an erasure), left or is gone. One read by primary key for the batch.

    This transaction holds the store's writers' lock (SQLite's write lock; on PostgreSQL the advisory lock
    every write transaction takes first, relay/store/database.py), so a `person erase` or `pair close` has
    either committed and is seen here, or waits for this commit and then finds what it wrote."""
    based = [(item.id, item.basis) for item in items if item.basis is not None]
    if not based:
        return set()
    member_ids = sorted({member_id for _, held_on in based for member_id, _, _ in held_on.members})
    found = (await connection.execute(
        select(members.c.id, members.c.email, members.c.left_at, pairs.c.status)
        .select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
        .where(members.c.id.in_(member_ids)))).all()
    now = {row.id: row for row in found}
    changed = set()
    for item_id, held_on in based:
        for member_id, email, status in held_on.members:
            row = now.get(member_id)
            if row is None or row.email != email or row.left_at is not None or row.status != status:
                changed.add(item_id)
                break
    return changed


async def _earlier_copies(connection: AsyncConnection, items: list[Accepted]) -> dict[tuple[int, str, str], str]:
    """Messages already stored with the same sender, Message-ID and body, within each item's window."""
    keyed = [item for item in items if _retry_key(item) is not None]
    if not keyed:
        return {}
    # An OR of (sender, Message-ID) equalities, not a row-value IN (VALUES ...): SQLite plans the latter
    # as a full scan of messages (1.4 s at a million messages), the OR as one ix_messages_retry lookup per
    # key on SQLite and a BitmapOr of them on PostgreSQL (tests/test_query_plans.py guards this).
    keys = dict.fromkeys((item.sender_id, item.original_message_id) for item in keyed)
    query = select(messages.c.id, messages.c.sender_id, messages.c.original_message_id, messages.c.body_hash,
                   messages.c.received_at).where(
        or_(*(and_(messages.c.sender_id == sender, messages.c.original_message_id == original)
              for sender, original in keys)),
        messages.c.received_at >= min(item.received_at - item.duplicate_window for item in keyed),
    )
    found: dict[tuple[int, str, str], str] = {}
    for row in (await connection.execute(query)).all():
        found.setdefault((row.sender_id, row.original_message_id, row.body_hash), row.id)
    return found


async def store_accepted(connection: AsyncConnection, item: Accepted) -> AcceptOutcome:
    """The write job of one accepted message; runs inside a group-commit transaction."""
    return (await store_accepted_many(connection, [item]))[0]


async def store_accepted_many(connection: AsyncConnection, items: list[Accepted]) -> list[AcceptOutcome]:
    """The write job of the messages accepted together: one retry query and one insert per table.

    A client that resends a message it already got 250 for (same sender, same Message-ID, same body,
    within the window) gets the first message's id back and nothing is stored or queued again; that
    holds across commits and within this one batch."""
    items = [_storable(item) for item in items]
    await take_write_lock(connection)  # taken already by a transaction begun through relay/store/database.py
    changed = await _changed(connection, items)
    known = await _earlier_copies(connection, [item for item in items if item.id not in changed])
    rows: dict[Any, list[dict[str, Any]]] = {messages: [], events: [], thread_ids: [], held: [], outbound: []}
    outcomes: list[AcceptOutcome] = []
    for item in items:
        if item.id in changed:
            outcomes.append(AcceptOutcome(item.id, duplicate=False, changed=True))
            continue
        key = _retry_key(item)
        earlier = known.get(key) if key is not None else None
        if earlier is not None:
            rows[events].append(event_values(
                "duplicate", item.received_at, pair_id=item.pair_id, message_id=earlier,
                why="the client resent a message already accepted", remote=item.remote_addr))
            outcomes.append(AcceptOutcome(earlier, duplicate=True))
            continue
        if key is not None:
            known[key] = item.id
        _rows_of(item, rows)
        outcomes.append(AcceptOutcome(item.id, duplicate=False))
    links: list[chain.Link] = []
    for table, values in rows.items():  # parents before children: messages first (dicts keep order)
        if not values:
            continue
        if table is events:
            links += await event_store.insert_rows(connection, values)
            continue
        await connection.execute(table.insert(), values)
        if table is messages:
            links += [chain.message_link(row) for row in values]
        elif table is outbound:
            links += [chain.outbound_link(row) for row in values]
    await chain.append(connection, links)  # the whole batch in one statement
    return outcomes


MESSAGE_ID_LIMIT = 998  # the column's size: a header line's longest (RFC 5322)


def _storable(item: Accepted) -> Accepted:
    """The header texts as every backend stores them: PostgreSQL's text holds no NUL character (it is
    replaced, as a decoder replaces what it cannot read) and enforces the Message-ID column's size. The
    raw message keeps every byte."""
    subject = item.subject.replace("\x00", "\ufffd") if item.subject is not None else None
    own_id = item.original_message_id
    if own_id is not None:
        own_id = own_id.replace("\x00", "\ufffd")[:MESSAGE_ID_LIMIT]
    if (subject, own_id) == (item.subject, item.original_message_id):
        return item
    return replace(item, subject=subject, original_message_id=own_id)


def _rows_of(item: Accepted, rows: dict[Any, list[dict[str, Any]]]) -> None:
    rows[messages].append({
        "id": item.id, "pair_id": item.pair_id, "sender_id": item.sender_id, "recipient_id": item.recipient_id,
        "envelope_from": item.envelope_from, "remote_addr": item.remote_addr,
        "original_message_id": item.original_message_id, "body_hash": item.body_hash, "subject": item.subject,
        "size": len(item.raw), "raw": item.raw, "decision": item.decision, "received_at": item.received_at,
    })
    rows[events].extend([
        event_values("accepted", item.received_at, pair_id=item.pair_id, message_id=item.id,
                     sender_role=item.sender_role, size=len(item.raw), remote=item.remote_addr),
        event_values("decision", item.received_at, pair_id=item.pair_id, message_id=item.id,
                     decision=item.decision, reasons=item.reasons),
        *item.extra_events,
    ])
    for copy in [item.outbound, *item.copies]:
        if copy is not None:
            rows[thread_ids].append(thread_id_values(
                item.pair_id, item.id, item.sender_role, item.original_message_id, copy.out_message_id,
                sender_id=item.sender_id, recipient_id=copy.recipient_id or item.recipient_id))
    if item.hold is not None:
        rows[held].append(held_store.hold_values(
            message_id=item.id, pair_id=item.pair_id, program_id=item.hold.program_id, policy=item.hold.policy,
            now=item.received_at, reasons=item.hold.reasons, release_requires=item.hold.release_requires,
            notified=item.hold.notified, severity=item.hold.severity, rejected=item.hold.rejected,
            staff_subject=item.staff_subject,
        ))
    for entry in [item.outbound, *item.copies, *item.notices]:
        if entry is not None:
            rows[outbound].append(outbound_values(
                kind=entry.kind, rcpt=entry.rcpt, raw=entry.raw, out_message_id=entry.out_message_id,
                now=item.received_at, domain=item.domain, pair_id=item.pair_id, message_id=item.id,
                state=entry.state,
            ))


async def record_thread_id(
    connection: AsyncConnection, pair_id: int, message_id: str, sender_role: str, original_id: str | None,
    generated_id: str, *, sender_id: int | None = None, recipient_id: int | None = None,
) -> None:
    await connection.execute(thread_ids.insert().values(thread_id_values(
        pair_id, message_id, sender_role, original_id, generated_id, sender_id=sender_id, recipient_id=recipient_id)))


def thread_id_values(pair_id: int, message_id: str, sender_role: str, original_id: str | None,
                     generated_id: str, *, sender_id: int | None = None,
                     recipient_id: int | None = None) -> dict[str, Any]:
    """One delivered copy's pair of ids: the one its sender's client issued, the one its recipient's got."""
    return {"pair_id": pair_id, "message_id": message_id, "sender_role": sender_role, "original_id": original_id,
            "generated_id": generated_id, "sender_id": sender_id, "recipient_id": recipient_id}


def _capped_count(*conditions: Any) -> Any:
    rows = (select(messages.c.id).where(messages.c.pair_id == bindparam("pair_id"), *conditions)
            .limit(bindparam("cap", type_=Integer)).subquery())
    return select(func.count()).select_from(rows).scalar_subquery()


# Built once: constructing the two subqueries cost more Python on the event loop than running them.
_PAIR_STATS = select(_capped_count(), _capped_count(messages.c.received_at >= bindparam("since")))


async def pair_stats(connection: AsyncConnection, pair_id: int, now: datetime, cap: int) -> tuple[int, int]:
    """Messages of the pair so far, and in the last 24 hours, each counted up to `cap` at most: the
    rules only ask whether a threshold is reached, and a long conversation must not cost more. One
    statement for both counts (each statement is a round trip to the store's thread)."""
    return await connection.run_sync(read_pair_stats, pair_id, now, cap)


def read_pair_stats(connection: Connection, pair_id: int, now: datetime, cap: int) -> tuple[int, int]:
    """`pair_stats` on a sync connection (relay/store/reads.py)."""
    row = connection.execute(_PAIR_STATS, {"pair_id": pair_id, "cap": cap, "since": now - timedelta(hours=24)}).one()
    return int(row[0]), int(row[1])


async def group_thread_maps(connection: AsyncConnection, conversation_id: int, sender_id: int,
                            recipient_ids: list[int], refs: list[str]) -> dict[int, dict[str, str]]:
    """`read_thread_maps` on the async engine."""
    return await connection.run_sync(read_thread_maps, conversation_id, sender_id, recipient_ids, refs)


def read_thread_maps(connection: Connection, conversation_id: int, sender_id: int, recipient_ids: list[int],
                     refs: list[str]) -> dict[int, dict[str, str]]:
    """Per recipient, map the ids a member's message refers to onto the ids that recipient's client knows.
    One code path for pairs (one recipient) and groups: thread rows name the sender and recipient of each
    delivered copy (rows from before conversations were backfilled by migration 0010).

    A ref is an id the sender's own client issued (a message they wrote) or one it received from us (a
    copy of someone's message); either way it names a message of the conversation. For a recipient who
    wrote that message, the ref maps to their own original id; for anyone else, to the id we generated
    for their copy. Ids we do not know, or that name a message a recipient never got, are left out.
    """
    maps: dict[int, dict[str, str]] = {r: {} for r in recipient_ids}
    if not refs:
        return maps
    query = select(thread_ids).where(
        thread_ids.c.pair_id == conversation_id,
        or_(thread_ids.c.original_id.in_(refs), thread_ids.c.generated_id.in_(refs)),
    )
    named: dict[str, str] = {}  # ref -> the message it names
    for row in connection.execute(query).all():
        if row.original_id in refs and row.sender_id == sender_id:
            named[row.original_id] = row.message_id
        if row.generated_id in refs and row.recipient_id == sender_id:
            named[row.generated_id] = row.message_id
    if not named:
        return maps
    copies = connection.execute(select(thread_ids).where(
        thread_ids.c.pair_id == conversation_id, thread_ids.c.message_id.in_(set(named.values())))).all()
    for ref, message in named.items():
        for row in copies:
            if row.message_id != message:
                continue
            if row.sender_id in maps and row.original_id:
                maps[row.sender_id][ref] = row.original_id
            if row.recipient_id in maps:
                maps[row.recipient_id][ref] = row.generated_id
    return maps


async def get_message(connection: AsyncConnection, message_id: str) -> Any:
    return (await connection.execute(select(messages).where(messages.c.id == message_id))).first()


async def count_by_pair(connection: AsyncConnection, pair_ids: list[int]) -> dict[int, int]:
    if not pair_ids:
        return {}
    query = (
        select(messages.c.pair_id, func.count())
        .where(messages.c.pair_id.in_(pair_ids))
        .group_by(messages.c.pair_id)
    )
    return {row[0]: row[1] for row in (await connection.execute(query)).all()}
