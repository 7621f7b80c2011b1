"""Trusted browsers ("device cookies"): after a successful login the browser keeps a long-lived random
token for that account (cookie `mentor_relay_device`, HttpOnly, SameSite=Strict, path /login); the store
keeps its SHA-256. While an account is throttled because of someone else's wrong guesses
(relay.console.throttle), the right password from a browser that holds such a token is still accepted,
so an attacker cannot lock the real moderator out. A trusted browser that gets the password wrong
PER_DEVICE times is forgotten; a password change forgets them all (relay.console.accounts). Like the
throttle's, a trusted browser's attempt is counted before the password is verified, and the right password
sets the count back to zero."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.console.passwords import token_hash
from relay.store.schema import console_devices

COOKIE = "mentor_relay_device"
LIFETIME = timedelta(days=90)  # unused this long: forgotten
PER_DEVICE = 5  # wrong passwords from a trusted browser before it is forgotten


async def trusted(connection: AsyncConnection, token: str | None, moderator_id: int | None, now: datetime) -> bool:
    """Whether this browser logged in to this account before (and has not been forgotten since)."""
    if not token or moderator_id is None:
        return False
    row = (await connection.execute(select(console_devices.c.moderator_id, console_devices.c.last_used_at)
                                    .where(console_devices.c.token_hash == token_hash(token)))).first()
    return row is not None and row.moderator_id == moderator_id and row.last_used_at > now - LIFETIME


async def remember(connection: AsyncConnection, moderator_id: int, now: datetime) -> str:
    """A new trusted-browser token for the account (in the caller's write transaction)."""
    token = secrets.token_urlsafe(32)
    await connection.execute(console_devices.insert().values(token_hash=token_hash(token), moderator_id=moderator_id,
                                                             created_at=now, last_used_at=now, failures=0))
    return token


async def used(connection: AsyncConnection, token: str, now: datetime) -> bool:
    """The right password from this browser: its count of wrong ones starts again. False when it was
    forgotten meanwhile (then it is remembered anew)."""
    result = await connection.execute(update(console_devices).where(console_devices.c.token_hash == token_hash(token))
                                      .values(last_used_at=now, failures=0))
    return bool(result.rowcount)


async def failed(connection: AsyncConnection, token: str) -> None:
    """A wrong password from a trusted browser; at PER_DEVICE of them the browser is trusted no more."""
    key = token_hash(token)
    await connection.execute(update(console_devices).where(console_devices.c.token_hash == key)
                             .values(failures=console_devices.c.failures + 1))
    await connection.execute(delete(console_devices).where(console_devices.c.token_hash == key,
                                                           console_devices.c.failures >= PER_DEVICE))
