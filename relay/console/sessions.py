"""Console sessions, kept in the store.

At login the browser gets a random token (inside the console's signed cookie); the store keeps only its
SHA-256 with the account, when it started, when it was last used, and where from. Every request looks
the token up: a session that was revoked (logout, a password change, an admin), that has been idle for
IDLE, or that is older than LIFETIME lets nobody in, so a cookie copied before logout is worthless after
it. Admins list and revoke sessions from the console (/sessions) or with `mentor-relay moderator sessions`
and `moderator revoke`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.console.passwords import token_hash
from relay.store.database import transaction
from relay.store.schema import console_sessions, moderators

LIFETIME = timedelta(hours=8)  # at most this long after login, however busy
IDLE = timedelta(hours=1)  # ended after this long without a request
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often (one write, not one per page)


@dataclass(frozen=True)
class Session:
    id: int
    moderator_id: int
    username: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None
    user_agent: str | None

    def ends_at(self) -> datetime:
        return min(self.expires_at, self.last_seen_at + IDLE)


def _session(row: Any) -> Session:
    return Session(id=row.id, moderator_id=row.moderator_id, username=row.username, created_at=row.created_at,
                   last_seen_at=row.last_seen_at, expires_at=row.expires_at, address=row.address,
                   user_agent=row.user_agent)


def _select() -> Select[Any]:
    return (select(console_sessions, moderators.c.username)
            .select_from(console_sessions.join(moderators, moderators.c.id == console_sessions.c.moderator_id)))


def _live(now: datetime) -> list[ColumnElement[bool]]:
    return [console_sessions.c.revoked_at.is_(None), console_sessions.c.expires_at > now,
            console_sessions.c.last_seen_at > now - IDLE]


async def start(connection: AsyncConnection, moderator_id: int, now: datetime, *, address: str | None,
                user_agent: str | None) -> tuple[str, int]:
    """A new session in the caller's write transaction: (the token for the cookie, the session's id)."""
    token = secrets.token_urlsafe(32)
    session_id = (await connection.execute(console_sessions.insert().returning(console_sessions.c.id).values(
        token_hash=token_hash(token), moderator_id=moderator_id, created_at=now, last_seen_at=now,
        expires_at=now + LIFETIME, address=address, user_agent=(user_agent or "")[:200] or None))).scalar_one()
    return token, int(session_id)


async def find(engine: AsyncEngine, token: str, now: datetime) -> Session | None:
    """The live session of this token, or None; notes the request (at most once per TOUCH_EVERY)."""
    async with engine.connect() as connection:
        row = (await connection.execute(
            _select().where(console_sessions.c.token_hash == token_hash(token), *_live(now)))).first()
    if row is None:
        return None
    found = _session(row)
    if now - found.last_seen_at >= TOUCH_EVERY:
        async with transaction(engine) as connection:
            await connection.execute(update(console_sessions).where(console_sessions.c.id == found.id)
                                     .values(last_seen_at=now))
    return found


async def live(connection: AsyncConnection, now: datetime, moderator_id: int | None = None) -> list[Session]:
    """Sessions that still let someone in, newest first (one account's, or everyone's)."""
    query = _select().where(*_live(now)).order_by(console_sessions.c.id.desc())
    if moderator_id is not None:
        query = query.where(console_sessions.c.moderator_id == moderator_id)
    return [_session(row) for row in (await connection.execute(query)).all()]


async def get(connection: AsyncConnection, session_id: int) -> Session | None:
    row = (await connection.execute(_select().where(console_sessions.c.id == session_id))).first()
    return None if row is None else _session(row)


async def revoke(connection: AsyncConnection, now: datetime, by: str, *, session_id: int | None = None,
                 token: str | None = None, moderator_id: int | None = None) -> int:
    """End sessions (one by id or token, or all of an account) in the caller's write transaction;
    returns how many were still open."""
    query = update(console_sessions).where(console_sessions.c.revoked_at.is_(None))
    if session_id is not None:
        query = query.where(console_sessions.c.id == session_id)
    elif token is not None:
        query = query.where(console_sessions.c.token_hash == token_hash(token))
    elif moderator_id is not None:
        query = query.where(console_sessions.c.moderator_id == moderator_id)
    else:
        raise ValueError("revoke needs a session, a token or an account")
    result = await connection.execute(query.values(revoked_at=now, revoked_by=by))
    return int(result.rowcount or 0)
