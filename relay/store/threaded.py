"""SQLite: a group commit's whole transaction runs in one thread of its own, not one statement per turn of the loop.

Through the async driver (aiosqlite), every step of every statement (open a cursor, execute, fetch, close) is
a trip from the event loop to the driver's thread and back, and each trip waits for the loop's next turn. A
small message's commit is about 30 such trips. While ten 20 MB messages were being read, a turn of the loop
took several milliseconds, so that commit took 150-550 ms, and the messages behind it in the committer's queue
waited for it (bench/stall.py: small messages' p95 accept latency 0.6-1.4 s).

Here the committer (relay/store/committer.py) hands the transaction, with all its jobs, to one thread that
holds a plain (pysqlite) connection to the same file, set up as the async engine's are (durability pragmas,
BEGIN IMMEDIATE, no checkpoint inside a commit when `serve` checkpoints on its own). The loop waits for one
answer. The jobs stay the async functions of a connection that they are everywhere else: each gets a
`ThreadConnection`, whose methods do their work at once, so the job's coroutine runs to its end in one step
(`drive`), in that thread. A job that awaits anything else cannot run there: `drive` says so, loudly (every
job the committer runs is exercised by the tests).

The process's writers still take turns on the loop first (relay/store/database.writers_turn), and hold their
turn until the thread's transaction has ended. PostgreSQL (asyncpg, no driver thread) and in-memory stores
keep the plain path: `ThreadedWriter.for_engine` gives None for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection, Engine, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.store.database import thread_writer_engine, writers_turn

T = TypeVar("T")


class NotInThread(RuntimeError):
    """A store job awaited something other than its connection, so it cannot run whole in the writer's thread."""


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its awaits are all ThreadConnection's) to its end; its value."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        value = cast(T, done.value)
        if isinstance(value, Result):  # its rows would be read later, on another thread, from a closed cursor
            raise TypeError("a store job returned a Result; return its rows instead") from None
        return value
    coroutine.close()
    raise NotInThread("a store job awaited something other than its connection; it cannot run in the writer's "
                      "thread")


class _Nested:
    """`async with connection.begin_nested():` over a sync savepoint (community and digest jobs enrol in it)."""

    def __init__(self, connection: Connection) -> None:
        self._savepoint = connection.begin_nested()

    async def __aenter__(self) -> Any:
        return self._savepoint

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._savepoint.__exit__(kind, error, trace)


class ThreadConnection:
    """What the committer's jobs use of an AsyncConnection, done at once on a sync Connection (in the writer's
    thread). A job that needs more fails with AttributeError in every test that runs it."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection

    @property
    def dialect(self) -> Any:
        return self.sync_connection.dialect

    @property
    def info(self) -> dict[Any, Any]:
        return self.sync_connection.info

    async def execute(self, statement: Any, parameters: Any = None, *, execution_options: Any = None) -> Any:
        return self.sync_connection.execute(statement, parameters, execution_options=execution_options)

    async def exec_driver_sql(self, statement: str, parameters: Any = None, execution_options: Any = None) -> Any:
        return self.sync_connection.exec_driver_sql(statement, parameters, execution_options)

    async def execution_options(self, **options: Any) -> ThreadConnection:
        return ThreadConnection(self.sync_connection.execution_options(**options))

    def get_execution_options(self) -> Any:
        return self.sync_connection.get_execution_options()

    def begin_nested(self) -> _Nested:
        return _Nested(self.sync_connection)


class ThreadedWriter:
    """Write transactions of one SQLite file store, each run whole in one thread (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine, sync_engine: Engine) -> None:
        self.engine = engine
        self.sync_engine = sync_engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> ThreadedWriter | None:
        sync_engine = thread_writer_engine(engine)
        return None if sync_engine is None else cls(engine, sync_engine)

    async def transaction(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`job` in one write transaction, committed when it returns, rolled back if it raises."""
        async with writers_turn(self.engine):
            future = asyncio.get_running_loop().run_in_executor(self._thread, self._run, job)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await future  # the turn is held until the thread's transaction has ended
                raise

    def _run(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        with self.sync_engine.connect() as connection:
            writer = connection.execution_options(write=True)
            with writer.begin():
                return drive(cast(Coroutine[Any, Any, T], job(cast(AsyncConnection, ThreadConnection(writer)))))

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.sync_engine.dispose()
