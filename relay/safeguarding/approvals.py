"""Whose approval counts: a two-person release needs two distinct authenticated accounts.

The console (a logged-in session) and the API (a bearer token) authenticate the moderator; the command
line does not (whoever has the shell and the config has the database). So the command line may act only
as a named, existing console account (`--moderator NAME`, one that reviews the message's program), and it
may give one approval of a message at most: a message that needs two moderators gets its other approval
from the console or the API. Without `--moderator` the command line may still decide a message that
needs one moderator (recorded as `cli:<login name>`), never one that needs two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.console.roles import HELD_DECIDE, all_programs, may
from relay.holdqueue.actions import ReviewError
from relay.store.schema import moderators


class NotAllowed(ReviewError):
    """The command line may not make this decision; worded for the admin."""


@dataclass(frozen=True)
class CliActor:
    """A decision typed on the command line: as a named console account, or as the shell's login name."""

    account: str | None  # --moderator
    login: str

    from_cli = True

    @property
    def fallback(self) -> str:
        return f"cli:{self.login}"

    async def name_for(self, connection: AsyncConnection, item: dict[str, Any], *, approving: bool) -> str:
        return await cli_name(connection, item, self, approving=approving)


async def _account(connection: AsyncConnection, username: str) -> tuple[str, str, list[str]] | None:
    """(username, role, programs) of a console account. Read from the store here rather than through
    relay.console.accounts, which imports the console's pages (and, through them, the review this module
    serves)."""
    row = (await connection.execute(select(moderators.c.username, moderators.c.role, moderators.c.programs)
                                    .where(moderators.c.username == username.strip().casefold()))).first()
    return None if row is None else (row.username, row.role, list(json.loads(row.programs)))


async def cli_name(connection: AsyncConnection, item: dict[str, Any], actor: CliActor, *, approving: bool) -> str:
    """The name the decision is recorded under; NotAllowed when the command line may not make it."""
    needed = int(item["release_requires"])
    if actor.account is None:
        if approving and needed > 1:
            raise NotAllowed(f"this message needs {needed} moderators: name your console account with --moderator "
                             "(the other approval comes from the console or the API)")
        return actor.fallback
    account = await _account(connection, actor.account)
    if account is None:
        raise NotAllowed(f"no console account named {actor.account!r}: the command line acts only as an existing "
                         "account (see `mentor-relay moderator list`)")
    username, role, programs = account
    if not all_programs(role) and item["program_id"] not in programs:
        raise NotAllowed(f"{username} does not moderate program {item['program_id']}")
    if not may(role, HELD_DECIDE):
        raise NotAllowed(f"{username} is a {role}: that role does not decide on held mail")
    earlier = item.get("cli_approval")
    if approving and needed > 1 and earlier and earlier != username:
        raise NotAllowed(f"the command line already gave this message's one command-line approval (as {earlier}); "
                         "the next approval must come from a signed-in account in the console or the API")
    return username
