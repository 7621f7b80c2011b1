"""SQLite: the WAL checkpoints of `serve` and of its nudge sweep's process, kept out of their commits.

By default a SQLite commit that leaves 1,000 pages or more in the write-ahead log checkpoints it before the
commit returns: it copies those pages into the database file and syncs that file, all of it while the
writer still holds its turn to write (relay/store/database.writers_turn). On a store of a million messages,
while the nudge sweep's process was writing, that made some of intake's group commits wait well over
100 ms. `serve` and the sweep's process therefore turn it off on every connection of their engine
(`outside_commits`) and checkpoint on their own: `serve` from a task (`WalCheckpointer`) every EVERY
seconds, the sweep's process after every few of its commits (relay/nudges/child.py). Both are PASSIVE: a
PASSIVE checkpoint takes no write lock, so commits go on while it copies, and it copies what no reader
still needs. The CLI's commands keep SQLite's default (short-lived, they write little).

On PostgreSQL there is nothing to do: both functions leave its engine alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal, NamedTuple

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

EVERY = 1.0  # seconds between `serve`'s checkpoints

log = logging.getLogger(__name__)


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def outside_commits(engine: AsyncEngine | Engine) -> None:
    """SQLite: the commits of `engine`'s connections (each one opened from now on) no longer checkpoint the
    WAL; the caller must (`checkpoint`, `WalCheckpointer`), or the log grows without end. Call it before a
    Committer is made on `engine`: the committer's own thread engine follows it when it is made."""
    if engine.dialect.name == "sqlite":
        event.listen(_sync(engine), "connect", _no_autocheckpoint)


def commits_without_checkpoints(engine: AsyncEngine | Engine) -> bool:
    """Whether `outside_commits` was applied to `engine` (the committer's thread engine follows it)."""
    return event.contains(_sync(engine), "connect", _no_autocheckpoint)


def _sync(engine: AsyncEngine | Engine) -> Engine:
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


class Checkpoint(NamedTuple):
    """What one PASSIVE checkpoint found: `busy` (another checkpoint was under way), the pages in the log,
    and how many of them are now in the database file."""
    busy: bool
    logged: int
    copied: int


async def checkpoint(engine: AsyncEngine, mode: Literal["PASSIVE", "TRUNCATE"] = "PASSIVE") -> Checkpoint | None:
    """One checkpoint of `engine`'s WAL, on a connection of its own (None on PostgreSQL). PASSIVE copies what
    it can and waits for nobody; TRUNCATE (the erasures: relay/archive/erasure.py) also empties the log file
    when no reader still uses it."""
    if engine.dialect.name != "sqlite":
        return None
    async with engine.connect() as connection:
        row = (await connection.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")).first()
    busy, logged, copied = tuple(row) if row is not None else (0, 0, 0)
    return Checkpoint(bool(busy), int(logged), int(copied))


class WalCheckpointer:
    """`serve`'s checkpoints: one every `every` seconds from `start` to `stop` (the commits of an engine
    given to `outside_commits` do none). A failed checkpoint is logged and the next one tries again."""

    def __init__(self, engine: AsyncEngine, every: float = EVERY) -> None:
        self.engine = engine
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.engine.dialect.name == "sqlite":
            self._task = asyncio.create_task(self._loop(), name="wal-checkpointer")

    async def stop(self) -> None:
        """Stop the task; then one last checkpoint, so the log is left copied in."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.run_once()

    async def run_once(self) -> Checkpoint | None:
        try:
            return await checkpoint(self.engine)
        except Exception as exc:  # a locked or failing store: the next run tries again
            log.warning("WAL checkpoint failed: %s", exc)
            return None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.run_once()
