"""Opening the store: the async engine, SQLite durability pragmas, write transactions, migrations.

SQLite: WAL with synchronous=FULL. Write transactions begin IMMEDIATE (they take the write lock at
BEGIN and wait for it up to busy_timeout): a transaction that reads first and writes later would
otherwise fail at once with "database is locked" when another process (the CLI while `serve` runs)
committed in between, since SQLite cannot upgrade a stale read snapshot. What `serve` writes goes through
`transaction()`, where one process's writers first take turns on an asyncio lock, so that they never wait
for each other in SQLite's busy handler, which sleeps between tries. (An erasure's transaction,
relay/archive/erasure.erasing_transaction, the dry-run previews and `migrate` begin their own, with the same
locks on the store but not that turn.)

PostgreSQL: every write transaction takes one advisory lock first (`take_write_lock`), so that writers take
turns there too. Nearly every write appends to the archive's hash chain, which needs that lock anyway (its
head, and event ids in commit order); a writer that locked rows first and then asked for it could wait in a
circle with one that held it and then wanted those rows (a delivery result's outbound row against a purge
of its pair: PostgreSQL found the deadlock and undid the purge). Taken first, it leaves no circle to close.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from relay.store import checkpoints

MIGRATIONS = Path(__file__).parent / "migrations"
PG_MIGRATION_LOCK = 0x6D722D6D696772  # "mr-migr": PostgreSQL's advisory lock of schema migrations
PG_WRITE_LOCK = 0x6D722D63686169  # "mr-chai": PostgreSQL's advisory lock of writers (and the chain's head)
_LOCKED = "relay.store.database.write_locked"  # connection.info key: the transaction that holds the write lock


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver issues no BEGIN of its own; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # invariant 1: a 250 survives power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(WRITER_WAIT * 1000)}")  # the CLI and `serve` share the file
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get("write", False)
    if connection.get_execution_options().get("migrating", False):
        # SQLite rebuilds a table to change its constraints (Alembic batch mode: copy, drop, rename);
        # with foreign keys enforced, dropping a table that other rows refer to fails. The pragma only
        # takes effect outside a transaction, so it is set here, before BEGIN; migrate() then discards
        # the connection, and every new one enforces foreign keys again (_sqlite_pragmas).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITER_WAIT = 15.0  # seconds a write transaction waits for the other writers (SQLite's busy_timeout too)
_WRITE_GATES: weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


def _write_gate(engine: AsyncEngine) -> asyncio.Lock | None:
    """SQLite: the lock that this process's write transactions on `engine` take in turn (first come, first
    served) before BEGIN IMMEDIATE. Without it, writers of one process meet at SQLite's write lock, whose
    busy handler sleeps between tries (up to 100 ms each): a group commit waiting behind a sweep's run of
    short transactions slept through the gaps between them and waited hundreds of ms. PostgreSQL: None
    (its writers wait on the writers' advisory lock, `take_write_lock`, woken when it is released)."""
    if engine.dialect.name != "sqlite":
        return None
    loop = asyncio.get_running_loop()
    gates = _WRITE_GATES.setdefault(engine.sync_engine, {})
    gate = gates.get(loop)
    if gate is None:
        for closed in [other for other in gates if other.is_closed()]:
            del gates[closed]
        gate = gates[loop] = asyncio.Lock()
    return gate


@asynccontextmanager
async def writers_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """Wait for this process's turn to write on `engine` (SQLite; at once on PostgreSQL), at most
    WRITER_WAIT seconds, and hold it until the block ends. `serve` also takes it for each write transaction
    of its nudge sweep's own process (relay/nudges/child.py), so that sweep waits in the same queue."""
    gate = _write_gate(engine)
    if gate is None:
        yield
        return
    try:
        async with asyncio.timeout(WRITER_WAIT):
            await gate.acquire()
    except TimeoutError:
        raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
            f"database is locked (this process's other writer held it for over {WRITER_WAIT:.0f} s)")) from None
    try:
        yield
    finally:
        gate.release()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction: committed when the block ends, rolled back if it raises. On SQLite the process's
    writers take turns (_write_gate); other processes (the CLI beside `serve`) still meet at SQLite's lock."""
    async with writers_turn(engine), engine.connect() as connection:
        writer = await connection.execution_options(write=True)
        async with writer.begin():
            await take_write_lock(writer)
            yield writer


def store_busy(exc: BaseException) -> bool:
    """Whether `exc` is a writer that gave up waiting for the store's write lock (SQLite's "database is
    locked", PostgreSQL's lock timeout): the store is busy, not broken, and the same write succeeds later
    (intake answers 451 with one warning line, not a traceback)."""
    if not isinstance(exc, DBAPIError):
        return False
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return "database is locked" in text or "lock timeout" in text or type(exc.orig).__name__ == "LockNotAvailableError"


def log_store_failure(logger: logging.Logger, exc: BaseException, message: str, *args: Any) -> bool:
    """Log `message % args` for a step that failed with `exc`: a busy store (`store_busy`) as one warning line
    that says so, since nothing is broken and the step is tried again (SMTP 451, the next sweep or poll);
    anything else as an error with its traceback. Returns whether the store was busy."""
    if store_busy(exc):
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).splitlines()
        logger.warning(message + ": the store was busy (another writer held its write lock for over %g s: %s)",
                       *args, WRITER_WAIT, lines[0] if lines else type(exc).__name__)
        return True
    logger.error(message, *args, exc_info=exc)
    return False


async def take_write_lock(connection: AsyncConnection, *, bounded: bool = True) -> None:
    """On PostgreSQL, take the writers' lock for the rest of this transaction, once: the first statement of
    every write transaction (see the module's docstring). SQLite's write transaction holds its one writer's
    lock from BEGIN IMMEDIATE already.

    As SQLite's busy_timeout does, a writer waits at most WRITER_WAIT seconds for it (and for any lock later in
    the transaction), then fails ("lock timeout"; intake answers 451): a writer stuck with it must not stall every
    other writer for good. Not `bounded`: no limit (a migration, which the others wait for)."""
    if connection.dialect.name != "postgresql":
        return
    transaction = connection.sync_connection.get_transaction() if connection.sync_connection else None
    if transaction is not None and connection.info.get(_LOCKED) is transaction:
        return
    if bounded:
        await connection.execute(text("SELECT set_config('lock_timeout', :limit, true)"),
                                 {"limit": f"{round(WRITER_WAIT * 1000)}ms"})
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK})
    connection.info[_LOCKED] = transaction


class StoreCounts:
    """Statements executed and pool checkouts of one engine (the cost of the store per message: each is
    a hop to the driver's thread). `serve` logs them at stop; bench/throughput.py reads that line."""

    def __init__(self) -> None:
        self.statements = 0
        self.checkouts = 0

    def statement(self, *_args: Any) -> None:
        self.statements += 1

    def checkout(self, *_args: Any) -> None:
        self.checkouts += 1


_COUNTS: weakref.WeakKeyDictionary[Any, StoreCounts] = weakref.WeakKeyDictionary()


def store_counts(engine: AsyncEngine) -> StoreCounts:
    """The counters of `engine` (attached by create_engine)."""
    return _COUNTS.get(engine.sync_engine) or StoreCounts()


def create_engine(url: str) -> AsyncEngine:
    """An engine for the admin's database URL (already mapped to an async driver), with StoreCounts."""
    engine = _create_engine(url)
    counts = StoreCounts()
    _COUNTS[engine.sync_engine] = counts
    _count(engine.sync_engine, counts)
    return engine


def _count(sync_engine: Engine, counts: StoreCounts) -> None:
    event.listen(sync_engine, "before_cursor_execute", counts.statement)
    event.listen(sync_engine.pool, "checkout", counts.checkout)


def _set_up_sqlite(sync_engine: Engine) -> None:
    """Every SQLite engine's connections: the durability pragmas, and BEGIN IMMEDIATE for writes."""
    event.listen(sync_engine, "connect", _sqlite_pragmas)
    event.listen(sync_engine, "begin", _sqlite_begin)


def sqlite_file_engine(engine: AsyncEngine, pool_size: int = 2) -> Engine | None:
    """For a SQLite file store: a sync (pysqlite) engine on the same file, for work done in a thread of its
    own, with the pragmas and BEGIN of `engine`'s connections. None for PostgreSQL and in-memory stores."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync_engine = create_sync_engine(url.set(drivername="sqlite"), pool_size=pool_size, max_overflow=pool_size)
    _set_up_sqlite(sync_engine)
    return sync_engine


def reader_engine(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file store: a sync engine for reads done whole in a thread (relay/store/reads.py), with the
    same StoreCounts as `engine`; None for PostgreSQL and in-memory stores."""
    sync_engine = sqlite_file_engine(engine, pool_size=4)
    if sync_engine is not None:
        _count_as(engine, sync_engine)
    return sync_engine


def _count_as(engine: AsyncEngine, sync_engine: Engine) -> None:
    """`sync_engine`'s statements and checkouts counted in `engine`'s StoreCounts (when it has some)."""
    counts = _COUNTS.get(engine.sync_engine)
    if counts is not None:
        _count(sync_engine, counts)


def thread_writer_engine(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file store: a sync (pysqlite) engine on the same file, for the group committer's thread
    (relay/store/threaded.py), set up as `engine` is: the durability pragmas, BEGIN IMMEDIATE for writes, the
    same StoreCounts, and no checkpoint inside a commit when `engine` has none (checkpoints.outside_commits).
    None for PostgreSQL and in-memory stores."""
    sync_engine = sqlite_file_engine(engine)
    if sync_engine is None:
        return None
    if checkpoints.commits_without_checkpoints(engine):
        checkpoints.outside_commits(sync_engine)
    _count_as(engine, sync_engine)
    return sync_engine


def _create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if path == ":memory:":
            engine = create_async_engine(url, poolclass=NullPool)
        else:
            # Every SMTP session reads the store (alias lookups); connections above the pool size are
            # closed on return, and each new aiosqlite connection is a thread, a file open and pragmas.
            engine = create_async_engine(url, pool_size=32, max_overflow=32)
        _set_up_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


# Alembic is imported only to migrate: a command on an up-to-date store (every command, most of the time)
# reads the stored revision with one query and the newest from the migration files' own lines.
_REVISION = re.compile(r'^(down_)?revision(?:: [^=]+)? = (?:"([^"]+)"|None)$', re.MULTILINE)


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    """The store's revision (as alembic's MigrationContext reads it: None for a new store)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(found) > 1:
        raise RuntimeError(f"the store has several schema revisions: {found}")
    return found[0] if found else None


@functools.cache  # the files of this version do not change while it runs
def _migrations() -> tuple[frozenset[str], frozenset[str]] | None:
    """Every migration's revision and every down_revision named, read from the files' own lines (None when a
    file has no such lines)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        lines = {bool(down): revision for down, revision in _REVISION.findall(path.read_text(encoding="utf-8"))}
        if set(lines) != {False, True} or not lines[False]:
            return None
        revisions.add(lines[False])
        if lines[True]:
            downs.add(lines[True])
    return frozenset(revisions), frozenset(downs)


def _head() -> str | None:
    """The newest migration: the revision no other migration names as its down_revision, read from each
    file's `revision = "..."` and `down_revision = "..."` lines; alembic's answer when a file has no such
    lines (or not one head)."""
    found = _migrations()
    if found is None:
        return _alembic_head()
    heads = found[0] - found[1]
    return next(iter(heads)) if len(heads) == 1 else _alembic_head()


def _known(revision: str) -> bool:
    """Whether `revision` is one of this version's migrations."""
    found = _migrations()
    if found is not None:
        return revision in found[0]
    return revision in {script.revision for script in _scripts().walk_revisions()}


def _alembic_head() -> str | None:
    return _scripts().get_current_head()


def _scripts() -> Any:
    """Alembic's view of this version's migrations."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


class StoreError(Exception):
    """The store cannot be used by this version as it is (worded for the admin: one line, what to do)."""


class StoreTooNew(StoreError):
    """The store's schema revision is none of this version's migrations: a newer mentor-relay wrote it."""

    def __init__(self, revision: str) -> None:
        super().__init__(f"the store was written by a newer version of mentor-relay (its schema revision "
                         f"{revision!r} is unknown to this version, whose newest is {_head()!r}); install that "
                         f"version, or restore the backup taken before it was installed")
        self.revision = revision


def _refuse_unknown(revision: str | None) -> None:
    """StoreTooNew when the store's `revision` is none this version knows (nothing is written then)."""
    if revision is not None and revision != _head() and not _known(revision):
        raise StoreTooNew(revision)


async def store_revision(engine: AsyncEngine) -> str | None:
    """The store's schema revision (None: a new, empty store), read without writing."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


async def check_revision(engine: AsyncEngine) -> None:
    """StoreTooNew when a newer version wrote the store (`check-config`: systemd runs it before `serve`)."""
    _refuse_unknown(await store_revision(engine))


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (idempotent; run at every start and CLI command).
    An up-to-date store is only read, so a listing command never waits for `serve`'s write lock.
    Several instances starting at once on one new database migrate it once: SQLite's write transaction
    (BEGIN IMMEDIATE), or on PostgreSQL a transaction-level advisory lock, makes the others wait, and
    they then find the schema up to date (alembic reads the revision after the lock is taken).

    A store whose revision this version does not know (a newer version migrated it: a package downgraded
    without restoring the backup, an older instance beside a newer one) raises StoreTooNew before anything is
    written; alembic's own refusal of it (the store changed under the lock) too, as StoreError, never as
    alembic's traceback."""
    current = await store_revision(engine)
    if current == _head():
        return
    _refuse_unknown(current)
    async with engine.connect() as connection:
        writer = await connection.execution_options(write=True, migrating=True)
        try:
            async with writer.begin():
                if engine.dialect.name == "postgresql":
                    await writer.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
                    await take_write_lock(writer, bounded=False)  # then the writers' (instances still serving)
                await writer.run_sync(_upgrade)
        except Exception as exc:
            if not type(exc).__module__.startswith("alembic"):
                raise
            current = await store_revision(engine)
            _refuse_unknown(current)
            raise StoreError(f"the store's schema could not be brought up to date (revision {current!r}): "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        finally:
            if engine.dialect.name == "sqlite":
                await connection.invalidate()  # foreign keys were off on it: never hand it out again
