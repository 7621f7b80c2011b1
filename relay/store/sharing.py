"""A bulk writer outside `serve` (the CLI's `pair import`, `program end`) that shares the store's write lock.

Such a writer works in short transactions, but that alone does not let `serve` in. On SQLite, a writer of
`serve` that finds the lock taken waits in SQLite's busy handler, which sleeps between its tries (1, 2, 5, ...
up to 100 ms each): a bulk writer that begins its next transaction as soon as the last one commits takes the
lock back within microseconds, so the waiter's tries almost always find it taken, and after WRITER_WAIT
(15 s) intake gives up with 451 — as if the bulk writer held the lock throughout. `Sharing.rest`, awaited
between the bulk writer's transactions, leaves the lock free for PAUSE seconds once the writer has written for
WORK seconds since its last rest: longer than the busy handler's longest sleep, so a waiting writer of
`serve` gets in, at a cost of PAUSE / (WORK + PAUSE) of the bulk writer's time at most. `serve`'s own writers
do not need it: they take turns on an asyncio lock first (relay/store/database.writers_turn), and the nudge
sweep's process takes its turn over a pipe (relay/nudges/child.py).

On PostgreSQL the writers' advisory lock (relay/store/database.take_write_lock) is granted in the order it
was asked for: a waiting writer of `serve` gets it at the next commit, and no rest is needed.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncEngine

PAUSE = 0.15  # seconds the lock is left free; over SQLite's longest busy-handler sleep (100 ms)
WORK = 0.5  # seconds of writing (of transactions, and whatever lies between them) before a rest


class Sharing:
    """Rests between a bulk writer's transactions (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine, pause: float = PAUSE, work: float = WORK) -> None:
        self.pause = pause if engine.dialect.name == "sqlite" else 0.0
        self.work = work
        self.rests = 0
        self._since: float | None = None

    async def rest(self) -> None:
        """Between two transactions: leave the lock free a moment when the writer has written for long enough
        since its last rest (the first call starts the count)."""
        now = time.monotonic()
        if self._since is None or not self.pause:
            self._since = now
            return
        if now - self._since < self.work:
            return
        await asyncio.sleep(self.pause)
        self.rests += 1
        self._since = time.monotonic()
