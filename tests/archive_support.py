"""A small program's record written by the real relay, shared by the archive, export and retention tests."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.clock import FixedClock
from relay.config import load_settings
from relay.holdqueue import actions as review
from relay.service import Relay
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acreate_pair,
    eventually,
    nothing_queued,
    send,
    simple_message,
    store_url,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOLD_MEETINGS = """
    default_action: deliver
    rules:
      keywords:
        - name: meeting
          action: hold
          words: [meet up]
    notices:
      held: null
"""


@dataclass
class Archive:
    layout: Layout
    url: str  # the store, as relay.store.database.create_engine takes it
    pair: dict[str, Any]
    held_ids: list[str]


async def write(layout: Layout, pair: dict[str, Any], role: str, subject: str, body: str) -> str:
    person, alias = (MENTEE, pair["mentor_alias"]) if role == "mentee" else (MENTOR, pair["mentee_alias"])
    code, reply = await send(layout.smtp_port, simple_message(f"{person['name']} <{person['email']}>", alias,
                                                              subject, body), person["email"], alias)
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]


async def build_archive(layout: Layout, sink: Sink, clock: FixedClock | None = None) -> Archive:
    """A small program's record written by the real relay: delivered mail both ways, two held
    messages (one released, one rejected), a refused stranger, deliveries."""
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(HOLD_MEETINGS))
    clock = clock or FixedClock(START)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        await write(layout, pair, "mentee", "Hello", "I would like advice on engineering school.")
        clock.advance(timedelta(hours=3))
        await write(layout, pair, "mentor", "Re: Hello", "Happy to help, what interests you?")
        clock.advance(timedelta(hours=1))
        first = await write(layout, pair, "mentee", "Coffee", "Could we meet up on Friday?")
        second = await write(layout, pair, "mentee", "Coffee again", "Shall we meet up next week?")
        code, _ = await send(layout.smtp_port, simple_message("x@stranger.example", pair["mentee_alias"], "hi", "hey"),
                             "x@stranger.example", pair["mentee_alias"])
        assert code == 550
        clock.advance(timedelta(hours=2))
        await review.release(relay.settings, relay.engine, clock, first, "mod-ann")
        await review.reject(relay.settings, relay.engine, clock, second, "mod-ann", "no meetings outside")
        relay.worker.wake()
        await sink.wait_for(3)  # two delivered both ways, the released one
        # and the rejection's notice, queued just after the release: it often comes in before the released one,
        # and whether it is sent or still queued when the relay stops depended on the worker's timing
        await eventually(lambda: nothing_queued(layout), timeout=20)
    finally:
        await relay.stop()
    return Archive(layout, store_url(layout), pair, [first, second])
