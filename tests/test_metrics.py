"""Prometheus exposition read from the store of a running relay (injected clock), parsed with the
Prometheus client's own parser."""

from __future__ import annotations

import textwrap
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from relay.clock import FixedClock
from relay.config import load_settings
from relay.metrics import CONTENT_TYPE, exposition
from relay.service import Relay
from relay.store import events
from relay.store.database import transaction
from tests.archive_support import HOLD_MEETINGS, START, write
from tests.support import Layout, Sink, acreate_pair, eventually, nothing_queued, send, simple_message


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


async def test_metrics_exposition_reads_the_store(layout: Layout, sink: Sink) -> None:
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(HOLD_MEETINGS))
    clock = FixedClock(START)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        await write(layout, pair, "mentee", "Hello", "Advice please.")
        await write(layout, pair, "mentor", "Re: Hello", "Sure.")
        await write(layout, pair, "mentee", "Coffee", "Could we meet up?")
        for stranger in ("a@stranger.example", "b@stranger.example"):
            code, _ = await send(layout.smtp_port, simple_message(stranger, pair["mentee_alias"], "hi", "hey"),
                                 stranger, pair["mentee_alias"])
            assert code == 550
        async with transaction(relay.engine) as connection:
            await events.record(connection, "nudge.first", clock.now(), pair_id=pair["id"])
        await sink.wait_for(2)
        # both sent marks recorded before the clock moves (the sink may have the mail a moment before the relay
        # records its delivery: recorded after the jump it would show 3 hours of latency)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        clock.advance(timedelta(hours=3))
        figures = samples(await eventually(lambda: _delivered(relay, clock)))
    finally:
        await relay.stop()
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    assert figures[("mentor_relay_messages_accepted_total", (("decision", "deliver"),))] == 2
    assert figures[("mentor_relay_messages_accepted_total", (("decision", "hold"),))] == 1
    assert figures[("mentor_relay_messages_refused_total", (("reason", "stranger"),))] == 2
    assert figures[("mentor_relay_queue_depth", (("state", "queued"),))] == 0
    assert figures[("mentor_relay_queue_depth", (("state", "sent"),))] == 2
    assert figures[("mentor_relay_held_queue_size", ())] == 1
    assert figures[("mentor_relay_held_oldest_age_seconds", ())] == 3 * 3600
    assert figures[("mentor_relay_nudges_sent_total", (("kind", "nudge.first"),))] == 1
    # the clock stood still while delivering: both sends took 0 s of relay time
    assert figures[("mentor_relay_delivery_latency_seconds_bucket", (("le", "1.0"),))] == 2
    assert figures[("mentor_relay_delivery_latency_seconds_count", ())] == 2
    assert figures[("mentor_relay_sweep_duration_seconds_count", (("sweep", "hold"),))] >= 1


async def _delivered(relay: Relay, clock: FixedClock) -> bytes | None:
    body = await exposition(relay.engine, clock)
    return body if b'mentor_relay_queue_depth{state="sent"} 2.0' in body else None
