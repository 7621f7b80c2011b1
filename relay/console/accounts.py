"""Console accounts in the store: who may log in, their role (relay.console.roles) and their programs.
A password change revokes every session and trusted browser of the account, and its API token. A disabled
account (`disabled_at` set) cannot log in, and neither its sessions nor its token are accepted: disabling
ends the sessions and clears the token too, so enabling the account again brings neither back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.console import roles
from relay.console.passwords import hash_password, new_token, token_hash
from relay.console.roles import ROLES
from relay.store import events
from relay.store.database import transaction
from relay.store.schema import console_devices, console_sessions, moderators


class AccountError(Exception):
    """An account cannot be created or changed; worded for the admin."""


@dataclass(frozen=True)
class Moderator:
    id: int
    username: str
    role: str
    programs: tuple[str, ...]
    password_hash: str
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may(self, permission: str) -> bool:
        return roles.may(self.role, permission)

    def may_see(self, program_id: str) -> bool:
        """Everyone sees their own programs only; admins see all."""
        return roles.all_programs(self.role) or program_id in self.programs

    def visible(self, program_ids: list[str]) -> list[str]:
        return [p for p in program_ids if self.may_see(p)]


def username_key(username: str) -> str:
    return username.strip().casefold()


def _moderator(row: Any) -> Moderator:
    return Moderator(id=row.id, username=row.username, role=row.role, programs=tuple(json.loads(row.programs)),
                     password_hash=row.password_hash, disabled=row.disabled_at is not None)


async def add_moderator(engine: AsyncEngine, *, username: str, password: str, role: str, programs: list[str],
                        now: datetime, actor: str = "cli") -> Moderator:
    name = username_key(username)
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise AccountError("--username must be 1 to 64 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    try:
        async with transaction(engine) as connection:
            await connection.execute(moderators.insert().values(
                username=name, password_hash=hash_password(password), role=role,
                programs=json.dumps(sorted(set(programs))), created_at=now))
            found = await get_by_username(connection, name)
            await events.record(connection, "account_added", now, actor=actor, username=name, role=role,
                                programs=sorted(set(programs)))
    except IntegrityError:
        raise AccountError(f"a moderator named {name!r} exists already") from None
    assert found is not None
    return found


async def get_by_username(connection: AsyncConnection, username: str) -> Moderator | None:
    row = (await connection.execute(select(moderators).where(moderators.c.username == username_key(username)))).first()
    return None if row is None else _moderator(row)


async def get_by_token(connection: AsyncConnection, token: str) -> Moderator | None:
    """The enabled account whose API token this is, or None."""
    row = (await connection.execute(select(moderators).where(moderators.c.token_hash == token_hash(token),
                                                             moderators.c.disabled_at.is_(None)))).first()
    return None if row is None else _moderator(row)


async def issue_token(engine: AsyncEngine, username: str, *, actor: str = "cli", now: datetime | None = None) -> str:
    """A new API token for the moderator (replacing any earlier one); returned once, stored hashed. A disabled
    account gets none."""
    token = new_token()
    name = username_key(username)
    async with transaction(engine) as connection:
        account = await get_by_username(connection, name)
        if account is None:
            raise AccountError(f"no moderator named {name!r}")
        if account.disabled:
            raise AccountError(f"the account {name!r} is disabled: enable it first "
                               f"(moderator enable --username {name})")
        await connection.execute(update(moderators).where(moderators.c.id == account.id)
                                 .values(token_hash=token_hash(token)))
        if now is not None:
            await events.record(connection, "token_issued", now, actor=actor, username=name)
    return token


async def revoke_token(connection: AsyncConnection, account: Moderator) -> bool:
    """Clear the account's API token (inside the caller's transaction); True when it had one."""
    result = await connection.execute(update(moderators).where(moderators.c.id == account.id,
                                                               moderators.c.token_hash.is_not(None))
                                      .values(token_hash=None))
    return bool(result.rowcount)


async def end_sessions(connection: AsyncConnection, account: Moderator, now: datetime, by: str) -> int:
    """End every open session of the account and forget every browser it trusted; how many sessions ended."""
    ended = await connection.execute(
        update(console_sessions)
        .where(console_sessions.c.moderator_id == account.id, console_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by))
    await connection.execute(delete(console_devices).where(console_devices.c.moderator_id == account.id))
    return int(ended.rowcount or 0)


async def set_disabled(engine: AsyncEngine, username: str, disabled: bool, *, actor: str,
                       now: datetime) -> tuple[bool, int, bool]:
    """Disable (or enable) the account. Disabling ends its sessions, forgets its trusted browsers and clears
    its API token. Returns (changed, sessions ended, token cleared); changed is False when it was so already."""
    name = username_key(username)
    async with transaction(engine) as connection:
        account = await get_by_username(connection, name)
        if account is None:
            raise AccountError(f"no account named {name!r}")
        if account.disabled == disabled:
            return False, 0, False
        await connection.execute(update(moderators).where(moderators.c.id == account.id)
                                 .values(disabled_at=now if disabled else None))
        ended, cleared = 0, False
        if disabled:
            ended = await end_sessions(connection, account, now, "disabled")
            cleared = await revoke_token(connection, account)
            await events.record(connection, "account_disabled", now, actor=actor, username=name,
                                sessions_ended=ended, token_revoked=cleared)
        else:
            await events.record(connection, "account_enabled", now, actor=actor, username=name)
    return True, ended, cleared


async def list_moderators(connection: AsyncConnection) -> list[Moderator]:
    return [_moderator(row) for row in (await connection.execute(select(moderators).order_by(moderators.c.id))).all()]


async def set_password(engine: AsyncEngine, username: str, password: str, *, actor: str, now: datetime) -> int:
    """Change the password; every session of the account ends, every browser it trusted is forgotten and its
    API token is cleared (whoever had the old password, a copied cookie or the token is out). Returns how
    many sessions ended."""
    name = username_key(username)
    async with transaction(engine) as connection:
        account = await get_by_username(connection, name)
        if account is None:
            raise AccountError(f"no account named {name!r}")
        await connection.execute(update(moderators).where(moderators.c.id == account.id)
                                 .values(password_hash=hash_password(password)))
        ended = await end_sessions(connection, account, now, "password")
        cleared = await revoke_token(connection, account)
        await events.record(connection, "password_changed", now, actor=actor, username=name,
                            sessions_ended=ended, token_revoked=cleared)
    return ended
