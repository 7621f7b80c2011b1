"""Which program address does what: the local parts on the relay domain that are not aliases
(away@, help@, concern@, share@)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from relay.nudges import away, exchange, help
from relay.nudges.addresses import Incoming

HANDLERS: dict[str, Callable[[AsyncConnection, Incoming], Awaitable[None]]] = {
    "away": away.handle,
    "help": help.handle,
    "concern": help.handle,
    "share": exchange.handle,
}


def is_program_address(local_part: str) -> bool:
    return local_part.casefold() in HANDLERS
