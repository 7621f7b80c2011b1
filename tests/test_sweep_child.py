"""`serve`'s nudge sweep in a process of its own (relay/nudges/child.py): it sends what is due at the relay's
(injected) clock, each notice once, with the chain intact; a relay stopped during it stops it after the
transaction under way, and a later sweep sends the rest, nothing twice.

The relays here run in-process with `sweep_in_child=True`, as `serve` builds its relay; the sweep's process is
real (python -m relay.nudges.child) and takes its write turns through the relay's pipes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from relay.archive.verify import verify
from relay.clock import FixedClock
from relay.config import load_settings
from relay.service import Relay
from relay.store.schema import events, notice_keys, outbound
from tests.bulkstore import enrol_many
from tests.support import Layout, eventually, rows

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 10:00 in New York, the program's zone: no quiet hours


async def counts(layout: Layout) -> tuple[int, int, int]:
    """Check-ins claimed (sent), queued as mail, and recorded as events."""
    keys = await rows(layout, select(func.count()).select_from(notice_keys).where(
        notice_keys.c.kind == "nudge.checkin", notice_keys.c.sent == 1))
    mail = await rows(layout, select(func.count()).select_from(outbound).where(outbound.c.kind == "notice"))
    recorded = await rows(layout, select(func.count()).select_from(events).where(events.c.kind == "nudge.checkin"))
    return int(keys[0][0]), int(mail[0][0]), int(recorded[0][0])


async def test_the_sweep_in_its_own_process_sends_what_is_due_at_the_relays_clock_once(layout: Layout) -> None:
    await enrol_many(layout, 150, T0 - timedelta(days=20))
    relay = Relay(load_settings(layout.config), clock=FixedClock(T0), sweep_in_child=True)
    await relay.start()  # the scheduler's start-up sweep begins at once, in its own process
    try:
        assert await eventually(lambda: _all_sent(layout, 300), timeout=100)
        assert (await relay.sweep_nudges()).sent == []  # every key claimed: nothing sent twice
        assert await counts(layout) == (300, 300, 300)
        times = await rows(layout, select(events.c.at).where(events.c.kind == "nudge.checkin").distinct())
        assert [row[0] for row in times] == [T0]  # the relay's clock, not the machine's
        assert (await verify(relay.engine)).ok
    finally:
        await relay.stop()


async def _all_sent(layout: Layout, expected: int) -> bool:
    return (await counts(layout))[0] >= expected


@pytest.mark.timeout(400)
async def test_a_relay_stopped_during_the_sweep_ends_it_whole_and_the_next_sends_the_rest(layout: Layout) -> None:
    due = 2000
    await enrol_many(layout, due, T0 - timedelta(days=20))
    relay = Relay(load_settings(layout.config), clock=FixedClock(T0), sweep_in_child=True)
    await relay.start()
    try:
        await eventually(lambda: _all_sent(layout, 1), timeout=100)
    finally:
        await relay.stop()  # asks the sweep's process to end after its transaction under way
    keys, mail, recorded = await counts(layout)
    assert keys == mail == recorded  # every transaction committed whole or not at all
    assert keys < 2 * due, "the sweep had finished before the relay was stopped"
    again = Relay(load_settings(layout.config), clock=FixedClock(T0), sweep_in_child=True)
    await again.start()
    try:
        assert await eventually(lambda: _all_sent(layout, 2 * due), timeout=200)
    finally:
        await again.stop()
    assert await counts(layout) == (2 * due, 2 * due, 2 * due)  # both members of every pair, once each
    assert (await verify(again.engine)).ok
