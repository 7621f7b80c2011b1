"""Sweeps under load: a nudge sweep over a few thousand due pairs never holds intake up, and `serve` opens
its SMTP port before its start-up sweep is done.

The due pairs are written fast through the store code (tests/bulkstore.py) into the test's real store,
enrolled 20 days before the relay's clock with no message since: every one is due a check-in to both
members (relay/nudges/rules/silence.py). Mail is accepted over real SMTP while the sweep writes; each
accept's own reply time is measured against a generous bound.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from relay.clock import FixedClock
from relay.store.schema import notice_keys
from tests.bulkstore import enrol_many
from tests.nudging import running, write_program
from tests.support import Layout, ServeProcess, rows, send, simple_message

DUE_PAIRS = 2500
SENDERS = 3  # concurrent SMTP clients, each sending one message per session, one after another
ACCEPT_BOUND = 5.0  # seconds from DATA's end to the 250: a group commit or two, never a whole sweep
T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 10:00 in New York, the program's zone: no quiet hours


async def checkins(layout: Layout) -> int:
    found = await rows(layout, select(func.count()).select_from(notice_keys).where(
        notice_keys.c.kind == "nudge.checkin"))
    return int(found[0][0])


async def test_a_sweep_over_thousands_of_due_pairs_never_holds_up_an_accept(layout: Layout) -> None:
    await enrol_many(layout, DUE_PAIRS, T0 - timedelta(days=20))
    # the writers' pair is enrolled at T0, so it is not due; enrolled before the relay starts, so that the
    # senders begin as soon as the start-up sweep does (under a loaded CI, enrolling after the start left the
    # sweep nearly done before the first accept: 4 accepts during it)
    writer = (await enrol_many(layout, 1, T0, prefix="W"))[0]
    sender, to = writer.mentee_email, writer.mentor_address
    clock = FixedClock(T0)
    latencies: list[float] = []
    during = 0  # accepts answered while the sweep was still writing

    async def keep_sending(port: int, deadline: float) -> None:
        nonlocal during
        while time.monotonic() < deadline:
            started = time.monotonic()
            code, text = await send(port, simple_message(sender, to, f"note {len(latencies)}", "Hello!"), sender, to)
            latencies.append(time.monotonic() - started)
            assert code == 250, text
            if await checkins(layout) >= 2 * DUE_PAIRS:
                return
            during += 1

    async with running(layout, clock) as relay:  # its start-up sweep begins at once, in the background
        deadline = time.monotonic() + 600
        await asyncio.gather(*(keep_sending(relay.settings.relay.smtp.port, deadline) for _ in range(SENDERS)))
        assert await checkins(layout) == 2 * DUE_PAIRS  # every due pair: both members, once each
        assert during >= 5, f"the sweep ended before intake was tested ({during} accepts during it)"
        assert max(latencies) < ACCEPT_BOUND, f"slowest accept {max(latencies):.2f}s over {len(latencies)}"
        # a second sweep finds every key claimed: nothing sent twice
        assert (await relay.sweep_nudges()).sent == []
    print(f"{during} accepts during the sweep; slowest {max(latencies) * 1000:.0f} ms")


def test_serve_answers_smtp_while_its_start_up_sweep_runs(tmp_path: Path, layout: Layout) -> None:
    # serve runs on the real clock: without quiet hours its start-up sweep writes the check-ins whatever the
    # hour (at night in New York, 02:00-13:00 UTC, it deferred them all and wrote none, so "not finished"
    # below held without any sweep writing while SMTP answered)
    write_program(layout, responsiveness={"quiet_hours": ""})
    asyncio.run(enrol_many(layout, DUE_PAIRS, datetime.now(UTC) - timedelta(days=20)))
    server = ServeProcess(layout, tmp_path / "serve.log").start()
    try:
        async def talk() -> tuple[int, str, int]:
            pair = await asyncio.to_thread(_create_writer, layout)
            sender, to = "writer@uni.example.net", f"{pair['mentee_alias']}"
            code, text = await send(layout.smtp_port, simple_message(sender, to, "hello", "Hi!"), sender, to)
            return code, text, await checkins(layout)

        code, text, done = asyncio.run(talk())
        assert code == 250, text
        assert done < 2 * DUE_PAIRS, "the start-up sweep had finished before the port was tried"
    finally:
        assert server.terminate(timeout=120) == 0


def _create_writer(layout: Layout) -> dict[str, str]:
    from tests.support import create_pair

    return create_pair(layout, {"email": "writer@uni.example.net", "name": "Wanda Writer", "handle": "Willow"},
                       {"email": "reader@mail.example.org", "name": "Rex Reader", "handle": "Rowan"})

