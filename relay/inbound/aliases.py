"""Aliases: which conversation and which recipient an alias local part names, remembered briefly.

Every RCPT asks, so active aliases are remembered for ALIAS_TTL seconds; unknown or closed ones are
always looked up, so a new pair works at once and closing a pair takes effect within ALIAS_TTL.
`forget` drops them all (a sweep ended pairs, or a concern paused them). What is past its time is let go
at most every ALIAS_TTL seconds, as new aliases are remembered, so the cache holds about the aliases written
to in the last few seconds, not every pair seen since the start (a soak enrolling 100 pairs a minute saw
the relay grow by 0.17 MB a minute until then).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from relay.store.pairs import Member, Pair, read_by_alias
from relay.store.reads import Reads

ALIAS_TTL = 2.0  # seconds an active alias is remembered: closing a pair takes effect within this
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Target:
    """The alias an envelope is addressed to: the pair, the recipient, and who may write."""

    pair: Pair
    recipient: Member

    @property
    def sender(self) -> Member:
        return self.pair.partner_of(self.recipient)


class AliasCache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        """`monotonic`: the seconds the TTL is counted in (the relay's, injected by tests)."""
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, tuple[Pair, Member]]] = {}
        self._pruned = monotonic()

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self) -> None:
        self._entries.clear()

    async def lookup(self, reads: Reads, local: str) -> tuple[Pair, Member] | None:
        """An alias's pair and recipient, or None when no alias has this local part."""
        key = local.casefold()
        now = self._monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < ALIAS_TTL:
            return cached[1]
        found = await reads.run(read_by_alias, key)
        if found is not None and found[0].status == "active":
            if now - self._pruned >= ALIAS_TTL:
                self._entries = {k: v for k, v in self._entries.items() if now - v[0] < ALIAS_TTL}
                self._pruned = now
            if len(self._entries) > MAX_REMEMBERED:
                self._entries.clear()
            self._entries[key] = (now, found)
        return found
