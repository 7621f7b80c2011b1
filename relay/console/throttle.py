"""Login throttling: failed attempts per client address and per account, kept in the store so that a
lock survives a restart.

- A client address with `per_address` failures within `window` (whatever the usernames) is shut out
  for `lock_for`: one attacker at one address gets a handful of guesses, and nobody else is affected.
- An account with `per_account` failures within `window` (from any addresses) is closed for `lock_for`
  to browsers it does not know: a distributed attacker gets `per_account` guesses per `lock_for`.
- The real moderator is never locked out by someone else: a browser that logged in to the account
  before (relay.console.devices) is let through both locks and only needs the right password.

Unknown usernames are counted like known ones, so a lock says nothing about which accounts exist.

An attempt is counted BEFORE its password is verified (`reserve`, in a write transaction that first checks
the locks): attempts sent at the same moment take turns there, so however many arrive at once, at most
`per_account` of them (`per_address` from one address) are ever verified before the lock. The right
password then gives its reservation back (`give_back`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.schema import console_logins


@dataclass(frozen=True)
class Limits:
    per_account: int = 5
    per_address: int = 10
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


def keys(username: str, address: str) -> dict[str, str]:
    return {"account": f"user:{username}", "address": f"addr:{address}"}


async def locked_until(connection: AsyncConnection, login_keys: list[str], now: datetime) -> datetime | None:
    """The latest lock still in force on any of the keys, or None."""
    rows = (await connection.execute(select(console_logins.c.locked_until)
                                     .where(console_logins.c.key.in_(login_keys)))).all()
    locks = [row.locked_until for row in rows if row.locked_until is not None and row.locked_until > now]
    return max(locks) if locks else None


@dataclass(frozen=True)
class Reservation:
    """An attempt counted before its verification: the locks it set (key -> until), if any."""

    locks: dict[str, datetime]

    @property
    def locked(self) -> datetime | None:
        return max(self.locks.values()) if self.locks else None


async def reserve(connection: AsyncConnection, login_keys: dict[str, str], now: datetime,
                  limits: Limits) -> Reservation:
    """Count an attempt on each key as a failure (inside the caller's write transaction, after it checked
    the locks); the attempt that reaches a limit sets the lock, and is itself still verified."""
    locks: dict[str, datetime] = {}
    for scope, key in login_keys.items():
        limit = _limit(scope, limits)
        row = (await connection.execute(select(console_logins).where(console_logins.c.key == key))).first()
        if row is None or row.window_start <= now - limits.window:
            failures, start = 1, now
        else:
            failures, start = row.failures + 1, row.window_start
        until = now + limits.lock_for if failures >= limit else None
        values = {"failures": 0 if until else failures, "window_start": now if until else start,
                  "locked_until": until if until else (row.locked_until if row is not None else None)}
        if row is None:
            await connection.execute(console_logins.insert().values(key=key, **values))
        else:
            await connection.execute(console_logins.update().where(console_logins.c.key == key).values(**values))
        if until is not None:
            locks[key] = until
    return Reservation(locks)


async def give_back(connection: AsyncConnection, login_keys: dict[str, str], reservation: Reservation,
                    limits: Limits) -> None:
    """The right password: the account's count starts again, and the address's loses this attempt (a lock
    this attempt set is lifted; one that another attempt set stays)."""
    await connection.execute(delete(console_logins).where(console_logins.c.key == login_keys["account"]))
    key = login_keys["address"]
    row = (await connection.execute(select(console_logins).where(console_logins.c.key == key))).first()
    if row is None:
        return
    if key in reservation.locks and row.locked_until == reservation.locks[key]:
        values = {"failures": _limit("address", limits) - 1, "locked_until": None}
    elif row.failures > 0:
        values = {"failures": row.failures - 1}
    else:
        return
    await connection.execute(console_logins.update().where(console_logins.c.key == key).values(**values))


def _limit(scope: str, limits: Limits) -> int:
    return limits.per_account if scope == "account" else limits.per_address
