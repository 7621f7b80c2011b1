"""Reads on the accept path, each done whole in one hop to a thread on a SQLite file store.

Through the async engine (aiosqlite) every statement is several hops between the event loop and its
connection's thread (the cursor, the statement, the rows: each a wake-up of the loop and a turn of the
interpreter's lock, which the relay's process is bound by). A read run here is one hop however many
statements it has: the function runs in a thread, on a connection of a sync engine on the same file
(database.sqlite_file_engine), and the loop awaits its result once. On PostgreSQL, and on an in-memory
store, the function runs on the async engine (`run_sync`), like any other read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.store.database import reader_engine

T = TypeVar("T")


class Reads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync = reader_engine(engine)

    @property
    def sync_engine(self) -> Engine | None:
        """The engine the reads run on in a thread (None where they run on the async engine)."""
        return self._sync

    async def run(self, read: Callable[..., T], *args: Any) -> T:
        """`read(connection, *args)`, given a sync connection, in its own read transaction."""
        if self._sync is None:
            async with self._engine.connect() as connection:
                return await connection.run_sync(read, *args)
        return await asyncio.to_thread(self._in_thread, read, args)

    def _in_thread(self, read: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._sync is not None
        with self._sync.connect() as connection:
            return read(connection, *args)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()
