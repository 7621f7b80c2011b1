"""Which program address does what: the local parts on the relay domain that are not aliases
(away@, help@, concern@, share@: relay.inbound.program.ADDRESSES)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from relay.inbound.program import ADDRESSES, away, exchange, help
from relay.inbound.program.addresses import Incoming

HANDLERS: dict[str, Callable[[AsyncConnection, Incoming], Awaitable[None]]] = {
    "away": away.handle,
    "help": help.handle,
    "concern": help.handle,
    "share": exchange.handle,
}
assert tuple(HANDLERS) == ADDRESSES, "every program address has exactly one handler"

