"""Helpers of the nudge tests: a program file with its responsiveness, a relay on an injected clock,
pairs enrolled in-process on that clock, and the relay's own notices as the sink received them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import yaml

from relay.clock import FixedClock
from relay.config import load_settings
from relay.enrol import Person, create_pair
from relay.service import Relay
from relay.store.pairs import Pair
from tests.support import DOMAIN, Layout, Received, Sink, send, simple_message

NOTICES_FROM = f"notices@{DOMAIN}"


def write_program(layout: Layout, **extra: Any) -> None:
    """programs/stem.yaml as tests/support.Layout writes it, plus `extra` keys."""
    path = layout.root / "programs" / "stem.yaml"
    program = yaml.safe_load(path.read_text())
    program.update(extra)
    path.write_text(yaml.safe_dump(program))


@asynccontextmanager
async def running(layout: Layout, clock: FixedClock) -> AsyncIterator[Relay]:
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


async def enrol(relay: Relay, clock: FixedClock, mentor: tuple[str, str, str, str | None],
                mentee: tuple[str, str, str, str | None], **options: Any) -> Pair:
    """Enrol on the relay's clock: (email, name, handle, timezone) each."""
    return await create_pair(relay.settings, relay.engine, clock, program_id="stem",
                             mentor=Person(*mentor), mentee=Person(*mentee), **options)


async def write(relay: Relay, pair: Pair, role: str, subject: str, body: str = "Hello!") -> None:
    """The member in `role` writes to their partner's alias from their enrolled address."""
    sender = pair.member(role)
    to = pair.partner_of(sender).alias_address(DOMAIN)
    port = relay.settings.relay.smtp.port
    code, text = await send(port, simple_message(sender.email, to, subject, body), sender.email, to)
    assert code == 250, text


def notices_in(sink: Sink) -> list[Received]:
    return [r for r in sink.received if NOTICES_FROM in str(r.message["From"])]


async def wait_for_notices(sink: Sink, count: int, timeout: float = 20.0) -> list[Received]:
    """The relay's own notices once `count` of them arrived (woken by each arrival, bounded by `timeout`)."""
    await sink.handler.wait_until(lambda _: len(notices_in(sink)), count, timeout, "notices")
    return notices_in(sink)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def words(message: Any) -> str:
    """A message's text with its line breaks and runs of spaces folded, for phrases that wrap."""
    return " ".join(message.get_content().split())
