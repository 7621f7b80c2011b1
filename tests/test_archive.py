"""The tamper-evident archive: every writer is chained, and verify finds an edited, removed or
reordered row or entry, from the real relay's store and through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.archive.verify import Verdict, verify
from relay.store.database import create_engine, transaction
from relay.store.schema import archive_chain, events, held, messages, outbound, thread_ids
from tests.archive_support import START, Archive, build_archive
from tests.database import copy_database, engine_url
from tests.support import Layout, Sink, acli, acli_json


async def check(url: str) -> Verdict:
    engine = create_engine(url)
    try:
        return await verify(engine)
    finally:
        await engine.dispose()


async def tampered(url: str, tamper: Tamper, archive: Archive) -> tuple[str, str, int | None, str]:
    """Apply `tamper` to the store at `url` in one transaction, writing around the store's functions."""
    engine = create_engine(url)
    try:
        async with transaction(engine) as connection:
            return await tamper(connection, archive)
    finally:
        await engine.dispose()


async def count(connection: AsyncConnection, table: Any) -> int:
    return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def seq_of(connection: AsyncConnection, kind: str, ref: str) -> int:
    return int((await connection.execute(select(archive_chain.c.seq).where(
        archive_chain.c.kind == kind, archive_chain.c.ref == ref))).scalar_one())


async def entry_at(connection: AsyncConnection, seq: int) -> tuple[str, str]:
    row = (await connection.execute(select(archive_chain.c.kind, archive_chain.c.ref)
                                    .where(archive_chain.c.seq == seq))).one()
    return str(row.kind), str(row.ref)


async def event_of_kind(connection: AsyncConnection, kind: str) -> str:
    return str((await connection.execute(select(events.c.id).where(events.c.kind == kind))).scalar_one())


async def test_every_archived_row_is_chained_and_verifies(layout: Layout, sink: Sink) -> None:
    archive = await build_archive(layout, sink)
    engine = create_engine(archive.url)
    try:
        async with engine.connect() as connection:
            counts = {table.name: await count(connection, table)
                      for table in (messages, outbound, events, archive_chain)}
            kinds = set((await connection.execute(select(events.c.kind))).scalars())
    finally:
        await engine.dispose()
    assert {"accepted", "decision", "refused", "released", "rejected", "delivered"} <= kinds
    assert counts["messages"] == 4  # the refused stranger's message is not archived, its refusal is
    assert counts["archive_chain"] == counts["messages"] + counts["outbound"] + counts["events"]
    verdict = await check(archive.url)
    assert verdict.ok and verdict.entries == counts["archive_chain"]

    result = await acli(layout, "archive", "verify", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entries"] == counts["archive_chain"]
    shown = await acli(layout, "archive", "verify", "--progress")
    assert shown.returncode == 0 and f"{counts['archive_chain']} entries" in shown.stdout
    assert f"{counts['archive_chain']}/{counts['archive_chain']}" in shown.stderr  # the progress bar
    quiet = await acli(layout, "archive", "verify")
    assert quiet.returncode == 0 and quiet.stderr == ""  # no TTY, no --progress: no bar


# Each tamper edits the store around the relay's functions and returns what verify must report:
# (kind, ref, seq, words in the problem's text).
Tamper = Callable[[AsyncConnection, Archive], Awaitable[tuple[str, str, int | None, str]]]


async def edit_message_body(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = archive.held_ids[1]
    raw = (await db.execute(select(messages.c.raw).where(messages.c.id == ref))).scalar_one()
    await db.execute(update(messages).where(messages.c.id == ref)
                     .values(raw=bytes(raw).replace(b"next week", b"tomorrow")))
    return "message", ref, await seq_of(db, "message", ref), "changed"


async def edit_decision(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = await event_of_kind(db, "rejected")
    await db.execute(update(events).where(events.c.id == int(ref)).values(detail='{"reason": "spam"}'))
    return "event", ref, await seq_of(db, "event", ref), "changed"


async def edit_delivered_copy(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = str((await db.execute(select(outbound.c.id).where(outbound.c.message_id == archive.held_ids[0])))
              .scalar_one())
    await db.execute(update(outbound).where(outbound.c.id == ref).values(rcpt="someone@else.example"))
    return "outbound", ref, await seq_of(db, "outbound", ref), "changed"


async def remove_event(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = await event_of_kind(db, "refused")
    await db.execute(delete(events).where(events.c.id == int(ref)))
    return "event", ref, await seq_of(db, "event", ref), "removed"


async def remove_message(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    ref = archive.held_ids[1]
    for table in (held, thread_ids, outbound):
        await db.execute(delete(table).where(table.c.message_id == ref))
    await db.execute(delete(messages).where(messages.c.id == ref))
    return "message", ref, await seq_of(db, "message", ref), "removed"


async def remove_entry(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    seq = 7
    await db.execute(delete(archive_chain).where(archive_chain.c.seq == seq))
    kind, ref = await entry_at(db, seq + 1)
    return kind, ref, seq, "missing"


async def remove_last_entry(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    last = int((await db.execute(select(func.max(archive_chain.c.seq)))).scalar_one())
    kind, ref = await entry_at(db, last)
    await db.execute(delete(archive_chain).where(archive_chain.c.seq == last))
    return kind, ref, None, "not in the chain"


async def swap_entries(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    kind, ref = await entry_at(db, 6)
    for old, new in ((5, -1), (6, 5), (-1, 6)):
        await db.execute(update(archive_chain).where(archive_chain.c.seq == old).values(seq=new))
    return kind, ref, 5, "does not follow"


async def swap_event_rows(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    first, second = (await db.execute(select(events.c.id).order_by(events.c.id).limit(2).offset(3))).scalars()
    for old, new in ((first, -1), (second, first), (-1, second)):
        await db.execute(update(events).where(events.c.id == old).values(id=new))
    return "event", str(first), await seq_of(db, "event", str(first)), "changed"


async def rewrite_entry_for_edit(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    """An editor who also recomputes the row's entry (content and entry hash) breaks the next link."""
    from relay.archive import chain

    ref = await event_of_kind(db, "rejected")
    await db.execute(update(events).where(events.c.id == int(ref)).values(actor="mod-bob"))
    seq = await seq_of(db, "event", ref)
    row = (await db.execute(select(events).where(events.c.id == int(ref)))).one()
    content = chain.content_hash("event", {"kind": row.kind, "at": row.at, "actor": row.actor,
                                           "pair_id": row.pair_id, "message_id": row.message_id,
                                           "detail": row.detail})
    entry = (await db.execute(select(archive_chain.c.at, archive_chain.c.prev_hash)
                              .where(archive_chain.c.seq == seq))).one()
    digest = chain.entry_hash(seq, entry.at, "event", ref, row.pair_id, content, entry.prev_hash)
    await db.execute(update(archive_chain).where(archive_chain.c.seq == seq)
                     .values(content_hash=content, entry_hash=digest))
    kind, following = await entry_at(db, seq + 1)
    return kind, following, seq + 1, "does not follow"


async def edit_entry_only(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    kind, ref = await entry_at(db, 4)
    await db.execute(update(archive_chain).where(archive_chain.c.seq == 4).values(pair_id=99))
    return kind, ref, 4, "entry itself was changed"


async def insert_around_the_store(db: AsyncConnection, archive: Archive) -> tuple[str, str, int | None, str]:
    # an explicit id: on PostgreSQL the sequence behind events.id would otherwise hand out one it already did
    ref = int((await db.execute(select(func.max(events.c.id)))).scalar_one()) + 1
    await db.execute(insert(events).values(id=ref, at=START, kind="released", actor="ghost", pair_id=1,
                                           detail="{}"))
    return "event", str(ref), None, "not in the chain"


TAMPERS: list[Tamper] = [edit_message_body, edit_decision, edit_delivered_copy, remove_event, remove_message,
                         remove_entry, remove_last_entry, swap_entries, swap_event_rows, rewrite_entry_for_edit,
                         edit_entry_only, insert_around_the_store]


async def test_verify_finds_each_kind_of_tampering(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    archive = await build_archive(layout, sink)
    assert (await check(archive.url)).ok
    for tamper in TAMPERS:
        target = copy_database(archive.url, tmp_path)
        kind, ref, seq, words = await tampered(target, tamper, archive)
        verdict = await check(target)
        assert verdict.problem is not None, tamper.__name__
        assert (verdict.problem.kind, verdict.problem.ref, verdict.problem.seq) == (kind, ref, seq), tamper.__name__
        assert words in verdict.problem.what, (tamper.__name__, verdict.problem.what)


async def test_verify_cli_reports_the_first_bad_entry_and_exits_non_zero(layout: Layout, sink: Sink) -> None:
    archive = await build_archive(layout, sink)
    edits = sorted([await tampered(archive.url, edit_decision, archive),
                    await tampered(archive.url, edit_delivered_copy, archive)], key=lambda e: e[2] or 0)
    kind, ref, seq, _ = edits[0]  # two edits: the first in the chain is reported
    result = await acli(layout, "archive", "verify")
    assert result.returncode == 1
    assert result.stdout.startswith(f"archive NOT intact: entry {seq} ({kind} {ref}): the archived row was changed")
    data = await acli_json(layout, "archive", "verify", "--json")
    assert data["ok"] is False and data["entries"] == (seq or 0) - 1
    assert data["problem"] == {"seq": seq, "kind": kind, "ref": ref, "what": data["problem"]["what"]}


def test_archived_tables_are_written_only_by_the_chaining_store_functions() -> None:
    """A guard for code added later (other branches, merges): an INSERT into an archived table outside
    the store functions that chain it would leave rows that `archive verify` reports."""
    import re

    from tests.support import REPO

    allowed = {"messages": {"relay/store/messages.py"}, "outbound": {"relay/store/messages.py",
                                                                      "relay/store/outbound.py"},
               "events": {"relay/store/events.py"}}
    found = []
    for path in sorted((REPO / "relay").rglob("*.py")):
        name = str(path.relative_to(REPO))
        if "/migrations/" in name:
            continue
        source = path.read_text()
        for table, writers in allowed.items():
            if re.search(rf"\b{table}\.insert\(|insert\({table}\b|INSERT INTO {table}\b", source) \
                    and name not in writers:
                found.append(f"{name} inserts into {table}")
    assert found == []


async def test_rows_written_before_the_chain_existed_are_chained_by_the_migration(tmp_path: Path) -> None:
    """An installation upgraded from revision 0004 has its existing record chained once, in order."""
    from datetime import UTC, datetime

    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.engine import Connection

    from relay.store.database import MIGRATIONS, migrate
    from relay.store.schema import members, pairs

    def upgrade_to_0004(connection: Connection) -> None:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    url = engine_url(tmp_path, "old.db")
    engine = create_engine(url)
    try:
        async with transaction(engine) as connection:
            await connection.run_sync(upgrade_to_0004)
        async with transaction(engine) as connection:  # the record as revision 0004 wrote it (no chain yet)
            await connection.execute(insert(pairs).values(id=1, program_id="stem", status="active",
                                                          created_at=at("2025-01-01 10:00:00")))
            await connection.execute(insert(members), [
                {"id": 1, "pair_id": 1, "program_id": "stem", "role": "mentor", "email": "m@x.example",
                 "email_key": "m@x.example", "name": "M P", "handle": "Oak", "handle_key": "oak", "alias": "oak.1"},
                {"id": 2, "pair_id": 1, "program_id": "stem", "role": "mentee", "email": "e@x.example",
                 "email_key": "e@x.example", "name": "E P", "handle": "Elm", "handle_key": "elm", "alias": "elm.1"}])
            await connection.execute(insert(messages).values(
                id="q1", pair_id=1, sender_id=2, recipient_id=1, envelope_from="e@x.example", body_hash="h",
                subject="Hi", size=5, raw=b"hello", decision="deliver", received_at=at("2025-01-02 10:00:00")))
            await connection.execute(insert(outbound).values(
                id="o1", message_id="q1", pair_id=1, kind="relay", rcpt="m@x.example",
                mail_from="bounce+o1@relay.test", out_message_id="<o1@relay.test>", raw=b"copy", state="sent",
                attempts=1, next_attempt_at=at("2025-01-02 10:00:00"), created_at=at("2025-01-02 10:00:00")))
            await connection.execute(insert(events), [
                {"id": 1, "at": at("2025-01-02 10:00:00"), "kind": "accepted", "actor": "relay", "pair_id": 1,
                 "message_id": "q1", "detail": "{}"},
                {"id": 2, "at": at("2025-01-02 10:00:01"), "kind": "delivered", "actor": "relay", "pair_id": 1,
                 "message_id": "q1", "detail": '{"outbound_id": "o1"}'}])
        await migrate(engine)
    finally:
        await engine.dispose()
    verdict = await check(url)
    assert verdict.ok and verdict.entries == 4
    engine = create_engine(url)
    try:
        async with transaction(engine) as connection:
            entries = [tuple(row) for row in await connection.execute(
                select(archive_chain.c.kind, archive_chain.c.ref).order_by(archive_chain.c.seq))]
            await connection.execute(update(outbound).where(outbound.c.id == "o1").values(raw=b"edited"))
    finally:
        await engine.dispose()
    assert entries == [("message", "q1"), ("outbound", "o1"), ("event", "1"), ("event", "2")]
    problem = (await check(url)).problem  # the migrated chain guards the old rows
    assert problem is not None and (problem.seq, problem.ref) == (2, "o1")
