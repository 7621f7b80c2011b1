"""The store: migrations produce exactly the schema the code uses, with durability pragmas on."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Column, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError, SAWarning

from relay.store import database
from relay.store.database import create_engine, migrate, transaction
from relay.store.schema import metadata
from tests.support import OneTurn


async def test_migrations_match_the_schema_and_are_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # every start runs it: the second run must change nothing
        async with engine.connect() as connection:
            def describe(sync_connection):  # type: ignore[no-untyped-def]
                inspector = inspect(sync_connection)
                with warnings.catch_warnings():  # SQLite: "Skipped unsupported reflection of expression-based index"
                    warnings.simplefilter("ignore", SAWarning)
                    return {
                        table: ({c["name"] for c in inspector.get_columns(table)},
                                {(i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
                                 if not i.get("duplicates_constraint")  # PostgreSQL: a UNIQUE's own index
                                 and None not in i["column_names"]})  # PostgreSQL: an expression's
                        for table in inspector.get_table_names() if table != "alembic_version"
                    }

            migrated = await connection.run_sync(describe)
            sqlite = connection.dialect.name == "sqlite"
            index_names = set((await connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index'" if sqlite
                else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")).scalars())
    finally:
        await engine.dispose()
    declared = {
        table.name: ({c.name for c in table.columns},
                     {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes if not i.expressions
                      or all(isinstance(e, Column) for e in i.expressions)})
        for table in metadata.sorted_tables
    }
    assert migrated == declared
    # indexes on expressions (lower(outbound.rcpt)), which reflection skips: by name
    on_expressions = {i.name for table in metadata.sorted_tables for i in table.indexes
                      if not all(isinstance(e, Column) for e in i.expressions)}
    assert on_expressions and on_expressions <= index_names


async def test_sqlite_store_is_durable(tmp_path: Path) -> None:
    """The embedded default (SQLite, whatever backend the suite runs on): WAL and synchronous=FULL."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
    finally:
        await engine.dispose()
    assert journal == "wal" and synchronous == 2  # 2 = FULL: a 250 survives power loss


async def test_a_resend_within_the_same_group_commit_is_stored_once(database_url: str) -> None:
    """A client that retries before its first attempt was committed lands in the same batch: the batch
    stores the message once and answers both with its id."""
    from datetime import UTC, datetime, timedelta

    from relay.store.database import transaction
    from relay.store.messages import Accepted, OutboundEntry, store_accepted_many
    from relay.store.pairs import insert_pair

    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        await migrate(engine)
        async with transaction(engine) as connection:
            people = {role: {"email": f"{role}@example.org", "name": f"{role} Person", "handle": role.title(),
                             "alias": f"{role}.abcdef"} for role in ("mentor", "mentee")}
            pair_id = await insert_pair(connection, program_id="p", policy=None, end_date=None, created_at=now,
                                        people=people)

        def attempt(queue_id: str) -> Accepted:
            return Accepted(
                id=queue_id, pair_id=pair_id, sender_id=2, sender_role="mentee", recipient_id=1,
                envelope_from="mentee@example.org", remote_addr="127.0.0.1", original_message_id="<m1@client>",
                body_hash="same-body", subject="hi", raw=b"Subject: hi\r\n\r\nbody\r\n", decision="deliver",
                reasons=[], received_at=now, duplicate_window=timedelta(days=2), domain="relay.test",
                outbound=OutboundEntry(rcpt="mentor@example.org", out_message_id=f"<{queue_id}@relay.test>",
                                       raw=b"x"),
            )

        async with transaction(engine) as connection:
            first, retry = await store_accepted_many(connection, [attempt("first"), attempt("retry")])
        async with transaction(engine) as connection:
            (later,) = await store_accepted_many(connection, [attempt("later")])
            stored = (await connection.execute(text("SELECT count(*) FROM messages"))).scalar_one()
            queued = (await connection.execute(text("SELECT count(*) FROM outbound"))).scalar_one()
    finally:
        await engine.dispose()
    assert (first.id, first.duplicate) == ("first", False)
    assert (retry.id, retry.duplicate) == ("first", True)
    assert (later.id, later.duplicate) == ("first", True)
    assert (stored, queued) == (1, 1)


async def test_small_writes_waiting_with_large_ones_commit_first_and_each_large_one_alone(tmp_path: Path) -> None:
    """The group committer's large lane: a small message's commit never carries (nor waits behind a batch of)
    large messages' bytes."""
    from relay.store.committer import Committer

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await migrate(engine)
    committer = Committer(engine)
    order: list[str] = []

    def job(name: str):  # type: ignore[no-untyped-def]
        async def write(connection):  # type: ignore[no-untyped-def]
            order.append(name)
            await connection.execute(text("SELECT 1"))
            return name
        return write

    try:
        waiting = [committer.submit(job("large 1"), large=True), committer.submit(job("small 1")),
                   committer.submit(job("small 2")), committer.submit(job("large 2"), large=True),
                   committer.submit(job("small 3"))]
        assert await asyncio.wait_for(asyncio.gather(*waiting), 30) == [
            "large 1", "small 1", "small 2", "large 2", "small 3"]
    finally:
        await committer.close()
        await engine.dispose()
    assert order == ["small 1", "small 2", "small 3", "large 1", "large 2"]
    assert committer.batches == 3  # the small ones together, then each large one in a transaction of its own


async def test_on_sqlite_each_group_commit_runs_whole_in_the_writers_thread_with_full_durability(
        tmp_path: Path) -> None:
    """The committer runs a transaction's jobs in a thread of its own (relay/store/threaded.py), on a connection
    set up as every other: synchronous=FULL, WAL, foreign keys. A job that awaits anything but its connection
    cannot run there: its caller gets a clear error, its writes are rolled back, and the jobs that shared its
    batch are committed without it."""
    import threading

    from relay.store.committer import Committer
    from relay.store.threaded import NotInThread

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await migrate(engine)
    committer = Committer(engine)
    threads: list[str] = []

    async def settings(connection):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return [(await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("synchronous", "journal_mode", "foreign_keys")]

    def insert(name: str, wait: bool = False):  # type: ignore[no-untyped-def]
        async def write(connection):  # type: ignore[no-untyped-def]
            await connection.execute(text("INSERT INTO relay_state (key, value) VALUES (:k, 'v')"), {"k": name})
            if wait:
                await OneTurn()  # awaits something not its connection: cannot run in the writer's thread
            return name
        return write

    try:
        assert await committer.run(settings) == [2, "wal", 1]
        assert threads and threads[0] != threading.current_thread().name
        waiting = [committer.submit(insert("kept 1")), committer.submit(insert("dropped", wait=True)),
                   committer.submit(insert("kept 2"))]
        outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 30)
        async with engine.connect() as connection:
            stored = sorted((await connection.execute(text("SELECT key FROM relay_state WHERE value = 'v'"))).scalars())
    finally:
        await committer.close()
        await engine.dispose()
    assert outcomes[0] == "kept 1" and outcomes[2] == "kept 2"
    assert isinstance(outcomes[1], NotInThread)
    assert stored == ["kept 1", "kept 2"]


async def test_writers_of_one_process_take_turns_in_arrival_order(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: a process's write transactions wait for each other first come, first served (a group commit
    behind a sweep's run of short transactions gets the next turn, rather than sleeping in SQLite's busy
    handler through the gaps), and one that waits too long fails with a clear "database is locked"."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        await migrate(engine)
        async with transaction(engine) as connection:
            await connection.execute(text("CREATE TABLE turns (n INTEGER)"))
        holding, release = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with transaction(engine) as connection:
                await connection.execute(text("INSERT INTO turns VALUES (0)"))
                holding.set()
                await release.wait()

        async def writer(n: int, asking: asyncio.Event | None = None) -> None:
            if asking is not None:
                asking.set()  # no await until the writer waits for its turn: the test resumes only then
            async with transaction(engine) as connection:
                await connection.execute(text("INSERT INTO turns VALUES (:n)"), {"n": n})

        held = asyncio.create_task(first())
        await asyncio.wait_for(holding.wait(), 10)
        waiting = []
        for n in (3, 1, 4, 2, 5):
            asking = asyncio.Event()
            waiting.append(asyncio.create_task(writer(n, asking)))
            await asyncio.wait_for(asking.wait(), 10)  # the writer is now queued behind the first
        monkeypatch.setattr(database, "WRITER_WAIT", 0.2)
        with pytest.raises(OperationalError, match="database is locked"):
            await writer(9)  # the first still holds it
        release.set()
        await asyncio.wait_for(asyncio.gather(held, *waiting), 10)
        async with engine.connect() as connection:
            written = (await connection.execute(text("SELECT n FROM turns ORDER BY rowid"))).scalars().all()
    finally:
        await engine.dispose()
    assert written == [0, 3, 1, 4, 2, 5]


async def test_a_writer_that_holds_the_store_too_long_makes_the_next_one_fail_not_hang(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers take turns on both backends (SQLite's write lock; PostgreSQL's writers' lock, which every write
    transaction takes first). One that waits longer than WRITER_WAIT for its turn fails with an error naming the
    lock (intake then answers 451 and the sender's server retries), and writes nothing; it does not hang behind
    a stuck writer."""
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with transaction(engine) as connection:
            await connection.execute(text("CREATE TABLE turns (n INTEGER)"))
        monkeypatch.setattr(database, "WRITER_WAIT", 0.5)
        async with transaction(engine) as holding:
            await holding.execute(text("INSERT INTO turns VALUES (1)"))

            async def late() -> None:
                async with transaction(engine) as connection:
                    await connection.execute(text("INSERT INTO turns VALUES (2)"))

            with pytest.raises(DBAPIError, match=r"database is locked|lock timeout"):
                await asyncio.wait_for(late(), 10)
        async with engine.connect() as connection:
            written = (await connection.execute(text("SELECT n FROM turns"))).scalars().all()
    finally:
        await engine.dispose()
    assert written == [1]


def test_the_newest_migration_is_read_from_the_files_as_alembic_reads_it() -> None:
    """A command on an up-to-date store does not import alembic: the newest revision comes from the
    migration files' own `revision`/`down_revision` lines, and it is alembic's head."""
    from relay.store import database

    assert database._head() == database._alembic_head() is not None
