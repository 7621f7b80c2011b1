"""A message is decided on its conversation as read at RCPT and DATA, and written later, in the committer's
transaction; meanwhile another process may change the conversation (relay/store/messages.Basis). These tests
drive the store's write of accepted messages directly, beside the writers that change conversations, on
SQLite and on PostgreSQL; the SMTP side (451, the retry) is in tests/test_person.py and tests/test_endings.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from relay import ids
from relay.archive.person import erase_person
from relay.config import load_settings
from relay.inbound.program.addresses import enrolments
from relay.store import events
from relay.store.database import create_engine, transaction
from relay.store.messages import Accepted, AcceptOutcome, basis, enrolments_basis, store_accepted_many
from relay.store.pairs import Pair, get_pair
from relay.store.schema import messages, pairs
from tests.support import DOMAIN, MENTEE, Layout, acreate_pair, rows

ASH = ({"email": "rosa.lind@uni.example", "name": "Rosa Lind", "handle": "Ash"},
       {"email": "tomas.berg@mail.example", "name": "Tomas Berg", "handle": "Birch"})
CEDAR = ({"email": "ines.vale@uni.example", "name": "Ines Vale", "handle": "Cedar"},
         {"email": "omar.diaz@mail.example", "name": "Omar Diaz", "handle": "Dogwood"})


def message(pair: Pair, number: int, now: datetime) -> Accepted:
    """The mentee's message to the mentor, decided on the pair as given (archived, nothing queued)."""
    return Accepted(id=ids.queue_id(), pair_id=pair.id, sender_id=pair.mentee.id, sender_role="mentee",
                    recipient_id=pair.mentor.id, envelope_from=pair.mentee.email, remote_addr="127.0.0.1",
                    original_message_id=f"<note{number}@mail.example>", body_hash=f"h{number}", subject="Note",
                    raw=b"Subject: Note\r\n\r\nhello\r\n", decision="deliver", reasons=[], received_at=now,
                    outbound=None, duplicate_window=timedelta(days=1), domain=DOMAIN,
                    basis=basis(pair.status, pair.mentee, pair.mentor))


async def read_pairs(engine: Any, *pair_ids: int) -> list[Pair]:
    async with engine.connect() as connection:
        found = [await get_pair(connection, pair_id) for pair_id in pair_ids]
    assert all(found)
    return found  # type: ignore[return-value]


async def test_a_write_of_messages_and_a_sweep_ending_pairs_never_wait_for_each_other_in_a_circle(
        layout: Layout) -> None:
    """A sweep ending pairs (relay/nudges/lifecycle.end_due) or a concern pausing several holds one pair's row
    and the archive's lock (its event) when it comes to the next pair. A write of messages to that next pair
    that held its row and then waited for the archive's lock would close a circle: PostgreSQL finds a deadlock
    and undoes one of the two. Every write transaction takes the writers' lock first (relay/store/database.py):
    the write waits for the sweep, then finds the pair ended."""
    first = await acreate_pair(layout, *ASH)
    second = await acreate_pair(layout, *CEDAR)
    settings = load_settings(layout.config)
    intake, sweeps = create_engine(settings.database_url), create_engine(settings.database_url)
    now = datetime.now(UTC)
    try:
        (pair,) = await read_pairs(intake, second["id"])

        async def write() -> list[AcceptOutcome]:
            async with transaction(intake) as connection:
                return await store_accepted_many(connection, [message(pair, 1, now)])

        async with transaction(sweeps) as sweep:  # as end_due does, pair after pair
            await sweep.execute(update(pairs).where(pairs.c.id == first["id"]).values(status="ended"))
            await events.record(sweep, "pair.ended", now, pair_id=first["id"])
            writing = asyncio.create_task(write())
            await asyncio.wait({writing}, timeout=0.5)  # (SQLite: waits for the one writer)
            await sweep.execute(update(pairs).where(pairs.c.id == second["id"]).values(status="ended"))
            await events.record(sweep, "pair.ended", now, pair_id=second["id"])
        (outcome,) = await asyncio.wait_for(writing, 30)
    finally:
        await intake.dispose()
        await sweeps.dispose()
    assert outcome.changed  # written after the pair ended: its sender tries again
    assert {status for (status,) in await rows(layout, select(pairs.c.status))} == {"ended"}


async def test_a_write_of_messages_waits_for_a_writer_that_holds_a_conversation_then_writes_them(
        layout: Layout) -> None:
    """`archive hold place`, a purge, an erasure or `pair close` is a write transaction over one pair: the
    messages written meanwhile (to that pair and to another) wait for it, on both backends (the writers' lock,
    relay/store/database.py), and are then written, since nothing they were taken in on changed."""
    one, two = await acreate_pair(layout, *ASH), await acreate_pair(layout, *CEDAR)
    settings = load_settings(layout.config)
    intake, other = create_engine(settings.database_url), create_engine(settings.database_url)
    now = datetime.now(UTC)
    try:
        held, free = await read_pairs(intake, one["id"], two["id"])
        async with transaction(other) as holding:
            assert await get_pair(holding, held.id) is not None  # reads it, changes nothing

            async def write() -> list[AcceptOutcome]:
                async with transaction(intake) as connection:
                    return await store_accepted_many(connection, [message(held, 1, now), message(free, 2, now)])

            writing = asyncio.create_task(write())
            await asyncio.wait({writing}, timeout=0.5)
            assert not writing.done()
        outcomes = await asyncio.wait_for(writing, 30)
    finally:
        await intake.dispose()
        await other.dispose()
    assert [outcome.written for outcome in outcomes] == [True, True]
    assert len(await rows(layout, select(messages.c.id))) == 2


async def test_mail_to_a_program_address_read_before_its_sender_is_erased_is_not_written(layout: Layout) -> None:
    """help@, concern@, away@, share@ and digest@ read the sender's enrolments at the end of DATA, then check
    the sender (DNS, up to its timeout) before the write; an erasure committed meanwhile leaves the message
    unwritten (its handler, which would confirm to the member's address as read, does not run)."""
    await acreate_pair(layout)
    settings = load_settings(layout.config)
    engine = create_engine(settings.database_url)
    now = datetime.now(UTC)
    try:
        async with engine.connect() as connection:
            enrolled = await enrolments(connection, MENTEE["email"])
        pair, member = enrolled[0]
        help_mail = Accepted(id=ids.queue_id(), pair_id=pair.id, sender_id=member.id, sender_role=member.role,
                             recipient_id=None, envelope_from=MENTEE["email"], remote_addr="127.0.0.1",
                             original_message_id=None, body_hash="h", subject="help", raw=b"Subject: help\r\n\r\nhi",
                             decision="help", reasons=[{"address": "help"}], received_at=now, outbound=None,
                             duplicate_window=timedelta(days=1), domain=DOMAIN, basis=enrolments_basis(enrolled))
        await erase_person(settings, engine, MENTEE["email"], now, "cli:test")
        async with transaction(engine) as connection:
            (outcome,) = await store_accepted_many(connection, [help_mail])
    finally:
        await engine.dispose()
    assert outcome.changed and not outcome.written
    assert await rows(layout, select(messages.c.id).where(messages.c.subject == "help")) == []
