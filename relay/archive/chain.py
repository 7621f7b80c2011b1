"""The archive's hash chain: what a row's content hash covers, and appending entries to the chain.

Every archived row (an inbound message as received, an outbound copy or notice as queued, an event) gets
one entry in `archive_chain`, written by the store function that writes the row, in the same
transaction. An entry holds the row's content hash, the previous entry's hash, and its own hash over
both and its place (seq), so editing, removing or reordering a row or an entry breaks the chain at that
point (relay.archive.verify finds it).

Content hashes cover what does not change after the write: for outbound rows the delivery state
(attempts, claims, sent_at) is left out. The personal part of a row, its "body" (raw bytes, subject,
real addresses), is hashed separately first, so a retention purge can delete it and keep its digest
in the purge event: the row's content hash can still be recomputed from that tombstone.

Appending takes the chain head under the writers' lock: SQLite write transactions begin IMMEDIATE (one
writer at a time); on PostgreSQL every write transaction takes a transaction-level advisory lock first
(relay/store/database.take_write_lock). Events are inserted under it too, so that their ids, like
SQLite's, follow the order in which their transactions commit: a reader holding the lock has seen every event
with a lower id (relay/archive/retention.py relies on it), which a sequence alone does not give (an id taken by
a transaction that commits later).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.database import take_write_lock
from relay.store.schema import archive_chain, events, messages, outbound

GENESIS = "0" * 64

MESSAGE_FIELDS = ("id", "pair_id", "sender_id", "recipient_id", "remote_addr", "original_message_id",
                  "body_hash", "size", "decision", "received_at")
MESSAGE_BODY = ("envelope_from", "subject", "raw")
OUTBOUND_FIELDS = ("id", "message_id", "pair_id", "kind", "mail_from", "out_message_id", "created_at")
OUTBOUND_BODY = ("rcpt", "raw")
EVENT_FIELDS = ("kind", "at", "actor", "pair_id", "message_id", "detail")

BODY_FIELDS = {"message": MESSAGE_BODY, "outbound": OUTBOUND_BODY}
# What a purge leaves of each body field (the columns are NOT NULL where a value is required).
TOMBSTONE: dict[str, Any] = {"raw": b"", "subject": None, "envelope_from": "", "rcpt": ""}


@dataclass(frozen=True)
class Link:
    """One row to chain: its kind (message | outbound | event), id, pair, time and content hash."""

    kind: str
    ref: str
    pair_id: int | None
    at: datetime
    content_hash: str


PREHASH_MIN = 64 * 1024  # smaller bodies are hashed where they are met: a thread hop costs more
_prehashed: dict[int, tuple[bytes, str]] = {}  # id(raw) -> (raw, its sha256), while a commit of it is under way


@asynccontextmanager
async def prehashed(*values: bytes) -> AsyncIterator[None]:
    """Hash large message bytes in a thread before they are committed, and let the chain use those digests.

    The chain's content hashes are computed inside the commit, on the event loop: for a 20 MB message and its
    outbound copy that was about 80 ms of loop time. hashlib releases the GIL while it hashes, so in a thread
    the loop keeps talking meanwhile. The digests are forgotten when the block ends (nothing is kept alive)."""
    large = [v for v in values if len(v) >= PREHASH_MIN and id(v) not in _prehashed]
    if large:
        digests = await asyncio.to_thread(lambda: [hashlib.sha256(v).hexdigest() for v in large])
        for value, digest in zip(large, digests, strict=True):
            _prehashed[id(value)] = (value, digest)
    try:
        yield
    finally:
        for value in large:
            _prehashed.pop(id(value), None)


_AS_IS = frozenset({str, int, bool, float})


def _plain(value: Any) -> Any:
    if value is None or type(value) in _AS_IS:  # most of the values: a chain entry hashes millions of them
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        known = _prehashed.get(id(value))
        if known is not None and known[0] is value:
            return "sha256:" + known[1]
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return value


def _digest(values: list[Any]) -> str:
    data = json.dumps([_plain(v) for v in values], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def body_digest(kind: str, row: Mapping[Any, Any]) -> str:
    """The digest of a row's personal part: what a purge deletes and keeps the digest of."""
    return _digest([row[name] for name in BODY_FIELDS[kind]])


def content_hash(kind: str, row: Mapping[Any, Any], body: str | None = None) -> str:
    """The hash a chain entry keeps of its row; `body` stands in for a purged row's body digest."""
    if kind == "event":
        return _digest([row[name] for name in EVENT_FIELDS])
    fields = MESSAGE_FIELDS if kind == "message" else OUTBOUND_FIELDS
    return _digest([*(row[name] for name in fields), body if body is not None else body_digest(kind, row)])


def entry_hash(seq: int, at: datetime, kind: str, ref: str, pair_id: int | None, content: str, prev: str) -> str:
    return _digest([seq, at, kind, ref, pair_id, content, prev])


def message_link(row: Mapping[Any, Any]) -> Link:
    return Link("message", str(row["id"]), row["pair_id"], row["received_at"], content_hash("message", row))


def outbound_link(row: Mapping[Any, Any]) -> Link:
    return Link("outbound", str(row["id"]), row["pair_id"], row["created_at"], content_hash("outbound", row))


def event_link(event_id: int, row: Mapping[Any, Any]) -> Link:
    return Link("event", str(event_id), row["pair_id"], row["at"], content_hash("event", row))


def entries_after(head_seq: int, head_hash: str, links: list[Link]) -> list[dict[str, Any]]:
    """The chain rows for `links`, following the entry (head_seq, head_hash)."""
    rows = []
    prev = head_hash
    for offset, link in enumerate(links, start=1):
        seq = head_seq + offset
        digest = entry_hash(seq, link.at, link.kind, link.ref, link.pair_id, link.content_hash, prev)
        rows.append({"seq": seq, "at": link.at, "kind": link.kind, "ref": link.ref, "pair_id": link.pair_id,
                     "content_hash": link.content_hash, "prev_hash": prev, "entry_hash": digest})
        prev = digest
    return rows


_HEAD = select(archive_chain.c.seq, archive_chain.c.entry_hash).order_by(archive_chain.c.seq.desc()).limit(1)


_DEFERRED = "relay.archive.chain.deferred"  # connection.info key: links waiting for the end of a bulk write


@asynccontextmanager
async def deferred(connection: AsyncConnection) -> AsyncIterator[None]:
    """Inside the block, `append` collects the links of `connection` in order and chains them all in one
    statement when the block ends (a bulk write such as `pair import`: one head lookup and one INSERT
    instead of two statements per row). Nothing else may append on this connection meanwhile."""
    if _DEFERRED in connection.info:
        yield
        return
    pending: list[Link] = []
    connection.info[_DEFERRED] = pending
    try:
        yield
    finally:
        connection.info.pop(_DEFERRED, None)
    await append(connection, pending)


async def append(connection: AsyncConnection, links: list[Link]) -> None:
    """Chain `links` after the current head, in one statement, inside the caller's write transaction."""
    if not links:
        return
    pending = connection.info.get(_DEFERRED)
    if pending is not None:
        pending.extend(links)
        return
    await take_write_lock(connection)  # (taken already by a transaction begun through it: once)
    head = (await connection.execute(_HEAD)).first()
    seq, prev = (head.seq, head.entry_hash) if head is not None else (0, GENESIS)
    await connection.execute(archive_chain.insert(), entries_after(seq, prev, links))


def chain_existing_rows(connection: Connection) -> None:
    """Chain the rows written before the chain existed (run once, by the migration that creates it)."""
    def columns(table: Any, names: tuple[str, ...]) -> list[Any]:
        return [table.c[name] for name in names]

    found = connection.execute(select(*columns(messages, MESSAGE_FIELDS + MESSAGE_BODY))
                               .order_by(messages.c.received_at, messages.c.id))
    links = [message_link(row._mapping) for row in found]
    found = connection.execute(select(*columns(outbound, OUTBOUND_FIELDS + OUTBOUND_BODY))
                               .order_by(outbound.c.created_at, outbound.c.id))
    links += [outbound_link(row._mapping) for row in found]
    found = connection.execute(select(events.c.id, *columns(events, EVENT_FIELDS)).order_by(events.c.id))
    links += [event_link(row.id, row._mapping) for row in found]
    if links:
        connection.execute(archive_chain.insert(), entries_after(0, GENESIS, links))
