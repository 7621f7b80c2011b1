"""The store a test runs on: a SQLite file in the test's tmp dir, or a fresh PostgreSQL database.

Which backend: the environment variable MENTOR_RELAY_TEST_DATABASE. Unset, every test stores into a
SQLite file of its own. Set to a PostgreSQL server URL (postgresql://user:pass@127.0.0.1:PORT/DB, a user
allowed to CREATE DATABASE), every test that uses the store gets a fresh database on that server, made
for it and dropped after it (`DROP DATABASE ... WITH (FORCE)`: a relay the test killed cannot keep it).
The database named in the URL is used only to create and drop the others.

    new_database(directory)      the URL for relay.yaml ("sqlite:///relay.db" beside the config, or a new
                                 PostgreSQL database) — tests.support.Layout calls it, tests rarely need to
    engine_url(directory)        an async-driver URL for a test that opens the store itself
    copy_database(url, dir)      a copy of a store (the archive tests tamper with copies)
    create_database(server)      a new database on a given PostgreSQL server (tests of several instances)
    server_url()                 the PostgreSQL server to use, or None on SQLite

Databases are dropped by the conftest's autouse fixture after each test (those the test made), and at the
end of the session (those module-scoped fixtures made).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import uuid
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

ENV = "MENTOR_RELAY_TEST_DATABASE"
T = TypeVar("T")


def server_url() -> str | None:
    """The PostgreSQL server the tests run on (MENTOR_RELAY_TEST_DATABASE), or None for SQLite."""
    url = os.environ.get(ENV, "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise RuntimeError(f"{ENV} must be a PostgreSQL URL (postgresql://user:pass@host:port/db), not {url!r}")
    return url


def backend() -> str:
    return "postgresql" if server_url() else "sqlite"


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


class _Admin:
    """One connection to the server's maintenance database, on a loop of its own in a daemon thread, so
    that sync tests, async tests and fixtures of any scope can create and drop databases alike."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-databases", daemon=True)
        self._thread.start()
        self._connection: Any = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    async def _execute(self, statement: str) -> None:
        import asyncpg  # the `postgres` extra, part of the dev extras

        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://"))
        await self._connection.execute(statement)

    def execute(self, statement: str) -> None:
        self.run(self._execute(statement))

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # the server may be gone already (a cluster of the session)
                self.run(self._connection.close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


_admins: dict[str, _Admin] = {}  # server URL -> its admin connection
_created: list[tuple[str, str]] = []  # (server URL, database) made and not yet dropped, oldest first
_numbers = itertools.count(1)
_prefix = f"mrt_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"


def _admin(server: str) -> _Admin:
    if server not in _admins:
        _admins[server] = _Admin(server)
    return _admins[server]


def create_database(server: str, template: str | None = None) -> str:
    """A new, empty database on the PostgreSQL `server` (a URL); returns its URL. Dropped after the test."""
    name = f"{_prefix}_{next(_numbers)}"
    _admin(server).execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    _created.append((server, name))
    return with_database(server, name)


def new_database(directory: Path) -> str:
    """A fresh store's URL as an admin writes it in relay.yaml (relative SQLite paths are relative to the
    config file's directory, `directory`)."""
    server = server_url()
    return "sqlite:///relay.db" if server is None else create_database(server)


def engine_url(directory: Path, name: str = "store.db") -> str:
    """A fresh store's URL for relay.store.database.create_engine (async driver)."""
    from relay.config import database_url

    server = server_url()
    return database_url(f"sqlite:///{name}" if server is None else create_database(server), directory)


def copy_database(url: str, directory: Path) -> str:
    """A copy of the store at `url` (an engine URL), as an engine URL; nobody may be connected to it.
    SQLite: the file is copied with SQLite's backup API; PostgreSQL: CREATE DATABASE ... TEMPLATE."""
    if url.startswith("sqlite"):
        import sqlite3

        source_path = url.split(":///", 1)[1]
        target = directory / f"copy-{next(_numbers)}-{Path(source_path).name}"
        source, copy = sqlite3.connect(source_path), sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
        return f"sqlite+aiosqlite:///{target}"
    server = next(server for server, name in _created if name == database_name(url))
    copy_url = create_database(server, template=database_name(url))
    return url.split("://", 1)[0] + "://" + copy_url.split("://", 1)[1]


def mark() -> int:
    """How many databases exist now; `drop_since(mark)` drops those made after."""
    return len(_created)


def drop_since(count: int) -> None:
    while len(_created) > count:
        server, name = _created.pop()
        _admin(server).execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_all() -> None:
    drop_since(0)
    for admin in _admins.values():
        admin.close()
    _admins.clear()
