"""The store's side of a program's report (relay/reports/figures.py): aggregate queries that the database
answers with counts, sums and a few sorted columns, so that the report's memory grows with the number of
pairs and weeks it lists, never with the number of messages, events or holds it counts.

Times leave the database as whole microseconds since 1970 (`epoch_us`), computed in SQL on both backends:
Python parses no datetime per row, and a difference of two of them is exactly the microseconds of the
`timedelta` the figures used to subtract (`hours` gives the same float as `timedelta.total_seconds() / 3600`).
Weeks are ISO weeks (Monday to Sunday, UTC) numbered from the Monday 1969-12-29 (`epoch_week`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from relay.store.database import sqlite_file_engine
from relay.store.schema import events, held, members, messages, pairs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
WEEK_ZERO = date(1969, 12, 29)  # the Monday of week 0 of epoch_week
ROWS = 5000  # rows fetched at a time from a stream
MESSAGE_REACHED, REJECTED, HELD_BACK = 0, 1, 2  # pair_messages: reached its reader; rejected at intake; held
# and still waiting, or rejected by a moderator


class epoch_us(FunctionElement[int]):
    """Microseconds since 1970-01-01 of a UTCDateTime column (stored as naive UTC), NULL for NULL."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_us"


class epoch_week(FunctionElement[int]):
    """The Monday-to-Sunday week (UTC) of a UTCDateTime column, as weeks since Monday 1969-12-29."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_week"


class _by_other_index(FunctionElement[int]):
    """The column, marked on SQLite (a unary +) so that its terms are not answered from its own index: the
    nudge events of a program are a few among millions of events, found by kind; through the index on
    events (pair_id, kind) SQLite would search it once for each of the program's pairs, most of them with no
    nudge. PostgreSQL chooses by its statistics."""

    type = Integer()
    inherit_cache = True
    name = "by_other_index"


@compiles(_by_other_index, "sqlite")
def _by_other_index_sqlite(element: _by_other_index, compiler: Any, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


@compiles(_by_other_index)
def _by_other_index_default(element: _by_other_index, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


def _sqlite_us(column: str) -> str:
    # SQLAlchemy writes 'YYYY-MM-DD HH:MM:SS.ffffff' (a value written without its fraction reads 0 there).
    # The whole seconds from the first 19 characters only: SQLite rounds a fraction to milliseconds, so
    # strftime('%s') of 23:59:59.9999 says midnight, a second and a day late.
    return (f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr({column}, 21, 6) AS INTEGER))")


def _postgres_us(column: str) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: Any, **kw: Any) -> str:
    return _sqlite_us(compiler.process(element.clauses, **kw))


@compiles(epoch_us, "postgresql")
def _epoch_us_postgres(element: epoch_us, compiler: Any, **kw: Any) -> str:
    return _postgres_us(compiler.process(element.clauses, **kw))


@compiles(epoch_week, "sqlite")
def _epoch_week_sqlite(element: epoch_week, compiler: Any, **kw: Any) -> str:
    return f"(({_sqlite_us(compiler.process(element.clauses, **kw))} / {DAY_US} + 3) / 7)"


@compiles(epoch_week, "postgresql")
def _epoch_week_postgres(element: epoch_week, compiler: Any, **kw: Any) -> str:
    return f"(({_postgres_us(compiler.process(element.clauses, **kw))} / {DAY_US} + 3) / 7)"


def to_us(when: datetime) -> int:
    """`when` (aware) as epoch_us computes it in SQL."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def week_of(us: int) -> int:
    """The epoch_week of a time given as epoch_us."""
    return (us // DAY_US + 3) // 7


def week_start(week: int) -> date:
    return WEEK_ZERO + timedelta(days=7 * week)


def hours(us: int) -> float:
    """Microseconds as hours, the very float of timedelta(microseconds=us).total_seconds() / 3600."""
    return us / 10**6 / 3600


def _program_pairs(program_id: str) -> Any:
    return select(pairs.c.id).where(pairs.c.program_id == program_id, pairs.c.kind == "pair")


def starts_with(connection: AsyncConnection, column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix` (no LIKE wildcards in it): on SQLite also a range, so the index on the
    column serves it (its LIKE is case-insensitive and uses no index); PostgreSQL's LIKE with a constant
    prefix does, and a range there would follow the database's collation, not the bytes."""
    like = column.like(literal(prefix + "%", literal_execute=True))
    if connection.dialect.name == "sqlite":
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return and_(column >= prefix, column < upper, like)
    return like


async def _stream(connection: AsyncConnection, query: Any) -> AsyncIterator[Sequence[Any]]:
    """The rows of `query`, ROWS at a time (a server-side cursor on PostgreSQL). The next rows are asked for
    before these are handed over: the database reads them (SQLite in the driver's thread, which leaves the
    interpreter's lock while it steps) while Python handles these."""
    result = await connection.stream(query.execution_options(yield_per=ROWS))
    ahead = asyncio.ensure_future(result.fetchmany(ROWS))
    try:
        while chunk := await ahead:
            ahead = asyncio.ensure_future(result.fetchmany(ROWS))
            await asyncio.sleep(0)  # the read of the next rows starts
            yield chunk
    finally:
        if not ahead.done():
            with contextlib.suppress(Exception):
                await ahead


async def _plain_stream(connection: AsyncConnection, query: Any) -> AsyncIterator[Sequence[Any]]:
    """The rows of `query` as the driver returns them (tuples; asyncpg's records), ROWS at a time from a
    server-side cursor, without SQLAlchemy's Row objects: for a read of a million rows, where making them
    costs more than the database's own work."""

    def start(sync: Any) -> Any:
        statement, arguments = _statement(query, sync.dialect)
        cursor = sync.connection.dbapi_connection.cursor(server_side=True)
        # the engine's listeners see it as any statement (the store's counters, the query-plan tests)
        sync.dispatch.before_cursor_execute(sync, cursor, statement, arguments, None, False)
        cursor.execute(statement, arguments)
        return cursor

    cursor = await connection.run_sync(start)
    try:
        while rows := await connection.run_sync(lambda _: cursor.fetchmany(ROWS)):
            yield rows
    finally:
        await connection.run_sync(lambda _: cursor.close())


def pair_rows(connection: AsyncConnection, program_id: str) -> AsyncIterator[Sequence[Any]]:
    """The program's pairs in id order: (id, status, created_us, closed_us)."""
    return _stream(connection, select(pairs.c.id, pairs.c.status, epoch_us(pairs.c.created_at),
                                      epoch_us(pairs.c.closed_at))
                   .where(pairs.c.program_id == program_id, pairs.c.kind == "pair").order_by(pairs.c.id))


def _statement(query: Any, dialect: Any) -> tuple[str, Any]:
    """`query` as the driver takes it: its text and its parameters."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    arguments = tuple(values[name] for name in compiled.positiontup) if compiled.positional else values
    return str(compiled), arguments


def _pair_messages(program_id: str) -> Any:
    held_back = select(held.c.message_id).where(held.c.state.in_(["held", "rejected"]))
    state = case((messages.c.decision == "reject", REJECTED), (messages.c.id.in_(held_back), HELD_BACK),
                 else_=MESSAGE_REACHED)
    return (select(messages.c.pair_id, epoch_us(messages.c.received_at), messages.c.sender_id, state)
            .where(messages.c.pair_id.in_(_program_pairs(program_id)), messages.c.decision != "autoreply")
            .order_by(messages.c.pair_id, messages.c.received_at, messages.c.id))


async def each_pair_message(engine: AsyncEngine, program_id: str, consume: Callable[[Sequence[Any]], None]) -> None:
    """Hands the messages of the program's pairs (automatic replies not), ROWS at a time, to `consume`: each
    pair's in their order of arrival ((received_at, id), the order of the covering index
    ix_messages_pair_time, so the database sorts nothing), as plain tuples (pair_id, epoch_us, sender_id,
    MESSAGE_REACHED | REJECTED | HELD_BACK). One read serves the weekly counts and the reply times
    (relay/reports/figures.py); the senders' roles come from `mentors`, a few thousand rows, not from a join
    on every message.

    On a SQLite file store the read and `consume` run together in a thread, on a connection of their own:
    with the rows read in the driver's thread and consumed on the event loop, the two threads took the
    interpreter's lock in turn as each row was read (at 1M messages 2.4-3.3 s, against 2.2-2.3 s in one
    thread). On PostgreSQL the rows come from a server-side cursor and are consumed on the loop."""
    query = _pair_messages(program_id)
    reader = sqlite_file_engine(engine)
    if reader is None:
        async with engine.connect() as connection:
            async for chunk in _plain_stream(connection, query):
                consume(chunk)
        return

    def read() -> None:
        assert reader is not None
        with reader.connect() as connection:
            statement, arguments = _statement(query, connection.dialect)
            dbapi = connection.connection.dbapi_connection
            assert dbapi is not None  # a connection just checked out
            cursor = dbapi.cursor()
            try:
                # the store's engine's listeners see it as any of its statements (counters, query-plan tests)
                engine.sync_engine.dispatch.before_cursor_execute(connection, cursor, statement, arguments, None,
                                                                  False)
                cursor.execute(statement, arguments)
                while rows := cursor.fetchmany(ROWS):
                    consume(rows)
            finally:
                cursor.close()

    try:
        await asyncio.to_thread(read)
    finally:
        reader.dispose()


async def mentors(connection: AsyncConnection, program_id: str) -> set[int]:
    """The member ids of the mentors of the program's pairs (a pair's messages are its members')."""
    query = select(members.c.id).where(members.c.pair_id.in_(_program_pairs(program_id)), members.c.role == "mentor")
    return set((await connection.execute(query)).scalars().all())


async def nudge_kinds(connection: AsyncConnection, program_id: str) -> dict[str, int]:
    """The program's nudge events (kind "nudge.*") by kind."""
    query = (select(events.c.kind, func.count()).where(
        starts_with(connection, events.c.kind, "nudge."),
        _by_other_index(events.c.pair_id).in_(_program_pairs(program_id)))
        .group_by(events.c.kind))
    return {kind: int(count) for kind, count in (await connection.execute(query)).all()}


async def reminders_followed(connection: AsyncConnection, program_id: str, now: datetime, window: timedelta,
                             escalation: str) -> tuple[int, int]:
    """Of the program's reminders (nudge events but `escalation`): how many the pair's mentor followed with
    a message within `window`, and how many are due (followed, or sent `window` ago or more)."""
    reply = (select(messages.c.id).join(members, members.c.id == messages.c.sender_id).where(
        messages.c.pair_id == events.c.pair_id, members.c.role == "mentor", messages.c.decision != "autoreply",
        messages.c.received_at >= events.c.at,
        epoch_us(messages.c.received_at) <= epoch_us(events.c.at) + window // timedelta(microseconds=1))
        .correlate(events))
    followed = case((exists(reply), 1), else_=0)
    reminders = (select(followed.label("followed"), epoch_us(events.c.at).label("at_us")).where(
        starts_with(connection, events.c.kind, "nudge."), events.c.kind != escalation,
        _by_other_index(events.c.pair_id).in_(_program_pairs(program_id))).subquery())
    due = case((reminders.c.followed == 1, 1), (reminders.c.at_us <= to_us(now - window), 1), else_=0)
    row = (await connection.execute(select(func.coalesce(func.sum(reminders.c.followed), 0),
                                           func.coalesce(func.sum(due), 0)))).one()
    return int(row[0]), int(row[1])


def refusals(connection: AsyncConnection, program_id: str) -> AsyncIterator[Sequence[Any]]:
    """(kind, detail) of the events that may count as attempts: refusals, and the decisions whose detail
    names the sender-authentication rule (a finding of it), of the program's pairs."""
    in_program = events.c.pair_id.in_(_program_pairs(program_id))
    return _stream(connection, select(events.c.kind, events.c.detail).where(in_program, (
        (events.c.kind == "refused")
        | and_(events.c.kind == "decision", events.c.detail.like("%sender_auth%")))))


def holds(connection: AsyncConnection, program_id: str) -> AsyncIterator[Sequence[Any]]:
    """The program's hold queue: (state, severity, automatic, review in microseconds or None), the decided
    ones in increasing review time."""
    review = (epoch_us(held.c.decided_at) - epoch_us(held.c.held_at)).label("review_us")
    return _stream(connection, select(held.c.state, held.c.severity, held.c.automatic, review)
                   .where(held.c.program_id == program_id).order_by(review))
