"""The alias cache lets go of what is past its time, so it holds about the aliases written to in the last few
seconds, not every pair seen since the relay started (memory stays flat over a long run)."""

from __future__ import annotations

from relay.inbound.aliases import ALIAS_TTL, AliasCache
from relay.store.database import create_engine
from relay.store.reads import Reads
from tests.support import Layout, acreate_pair, store_url


class Ticker:
    """Monotonic seconds, moved only by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_aliases_past_their_time_are_let_go_as_new_ones_are_remembered(layout: Layout) -> None:
    pair = await acreate_pair(layout)
    mentor, mentee = (pair[key].split("@")[0] for key in ("mentor_alias", "mentee_alias"))
    ticker = Ticker()
    cache = AliasCache(ticker)
    engine = create_engine(store_url(layout))
    reads = Reads(engine)
    try:
        found = await cache.lookup(reads, mentor)
        assert found is not None and found[0].id == pair["id"] and found[1].role == "mentor"
        assert await cache.lookup(reads, mentee) is not None
        assert len(cache) == 2
        ticker.now += ALIAS_TTL / 2
        assert await cache.lookup(reads, mentor) == found  # still within its time: remembered
        assert len(cache) == 2
        ticker.now += ALIAS_TTL + 0.1
        again = await cache.lookup(reads, mentor)
        assert again is not None and again[0].id == pair["id"]
        assert len(cache) == 1  # the mentee's alias, unused for longer than ALIAS_TTL, was let go
    finally:
        reads.close()
        await engine.dispose()
