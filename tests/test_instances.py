"""Several relay instances on one PostgreSQL database, as a program that outgrew one machine runs them.

Two `mentor-relay serve` processes (two config folders, two SMTP ports, one database URL) start at once on a
new database: mail sent to both is delivered exactly once and `archive verify` passes after their concurrent
writes; the sweeps both run at start (nudges, hold-queue reminders, retention) send each mail and purge
each pair once; an instance killed with SIGKILL while sending leaves its claimed deliveries to the other,
which sends them once the lease is over.

These tests need PostgreSQL itself (the `postgres_url` fixture: MENTOR_RELAY_TEST_DATABASE, or a throw-away
cluster started from Debian's postgresql package), whichever backend the rest of the suite runs on.
"""

from __future__ import annotations

import asyncio
import re
import socket
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from relay.clock import FixedClock
from relay.config import load_settings
from relay.endings import close_pair
from relay.enrol import Person, create_pair
from relay.service import Relay
from relay.store.schema import events, outbound
from tests import database
from tests.support import (
    DOMAIN,
    MENTEE,
    Layout,
    ServeProcess,
    Sink,
    SinkHandler,
    acli,
    acreate_pair,
    eventually,
    rows,
    send,
    simple_message,
)

MODERATOR = "moderator@school.example"
SWEEPS = ("hold", "nudges", "retention")

# Each test starts serve processes (two at once): long on a busy machine, so they start first in a parallel run.
pytestmark = pytest.mark.timeout(300)


def instances(tmp_path: Path, url: str, sink_port: int, count: int = 2, **overrides: Any) -> list[Layout]:
    """`count` config folders for instances sharing the database at `url`."""
    layouts = []
    for index in range(count):
        from tests.support import free_port

        layout = Layout(root=tmp_path / f"instance{index}", smtp_port=free_port(), sink_port=sink_port,
                        database=url, overrides=dict(overrides))
        layout.write()
        layouts.append(layout)
    return layouts


@pytest.fixture
def shared_database(postgres_url: str) -> str:
    """A new PostgreSQL database for this test (dropped after it), as relay.yaml names it."""
    return database.create_database(postgres_url)


@contextmanager
def serving(layouts: list[Layout], tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """`serve` for each layout, started at the same moment (threads), all stopped after the block."""
    processes = [ServeProcess(layout, tmp_path / f"serve{index}.log") for index, layout in enumerate(layouts)]
    started: list[ServeProcess] = []
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(processes)) as pool:
            for future in [pool.submit(process.start) for process in processes]:
                started.append(future.result())
        yield processes
    finally:
        for process in processes:
            if process.process is not None and process.process.poll() is None:
                process.terminate()


@asynccontextmanager
async def aserving(layouts: list[Layout], tmp_path: Path) -> AsyncIterator[list[ServeProcess]]:
    """`serving` without blocking the test's loop (the sink lives on it) while the processes start."""
    context = serving(layouts, tmp_path)
    processes = await asyncio.to_thread(context.__enter__)
    try:
        yield processes
    finally:
        await asyncio.to_thread(context.__exit__, None, None, None)


async def queue_idle(layout: Layout) -> bool:
    """Nothing left to send: every outbound entry is sent or failed."""
    ((waiting,),) = await rows(layout, select(func.count()).select_from(outbound).where(outbound.c.state == "queued"))
    return int(waiting) == 0


async def event_kinds(layout: Layout) -> list[str]:
    return [row.kind for row in await rows(layout, select(events.c.kind).order_by(events.c.id))]


async def sweeps_run(layout: Layout) -> bool:
    """Whether this instance ran each sweep at least once (its own /metrics, from loopback)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{layout.console_port}/metrics")).text
    counts = {name: float(value) for name, value in re.findall(
        r'^mentor_relay_sweep_duration_seconds_count\{sweep="(\w+)"\} (\S+)$', text, re.MULTILINE)}
    return all(counts.get(name, 0) >= 1 for name in SWEEPS)


async def test_two_instances_deliver_each_message_once_and_the_archive_verifies(
        tmp_path: Path, sink: Sink, shared_database: str) -> None:
    first, second = instances(tmp_path, shared_database, sink.port)
    async with aserving([first, second], tmp_path):  # both migrate the new database at once
        pair = await acreate_pair(first)
        count = 40

        async def one(number: int) -> None:
            layout = (first, second)[number % 2]  # half the mail reaches each instance
            subject = f"Note {number:02d}"
            code, reply = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"],
                                                                      subject, f"Body {number}"),
                                     MENTEE["email"], pair["mentor_alias"])
            assert code == 250, reply

        await asyncio.gather(*(one(number) for number in range(count)))
        await sink.wait_for(count, timeout=60)
        await eventually(lambda: queue_idle(first), timeout=30, interval=0.1)
        kinds = await event_kinds(second)
        verified = await acli(second, "archive", "verify")
    subjects = sorted(str(received.message["Subject"]) for received in sink.received)
    assert subjects == [f"Note {number:02d}" for number in range(count)]  # each one, and once
    assert len({received.message["Message-ID"] for received in sink.received}) == count
    assert kinds.count("delivered") == count and kinds.count("accepted") == count
    assert verified.returncode == 0, verified.stdout + verified.stderr


def sweep_setup(layout: Layout) -> None:
    """A program whose mail is due for every sweep as soon as an instance starts."""
    program_path = layout.root / "programs" / "stem.yaml"
    program = yaml.safe_load(program_path.read_text())
    program["responsiveness"] = {"nudge_mentor_after": "1h", "second_nudge_after": "100h",
                                 "escalate_after": "200h", "quiet_hours": ""}
    program["retention"] = {"after_close": "1h"}
    program_path.write_text(yaml.safe_dump(program))
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(f"""
        rules:
          keywords:
            - name: meeting
              action: hold
              words: [meet up]
        review_within: 1h
        escalate_after: 1000h
        notices:
          held: null
        moderators:
          notify: [{MODERATOR}]
    """))


async def test_sweeps_of_two_instances_send_each_mail_and_purge_each_pair_once(
        tmp_path: Path, sink: Sink, shared_database: str) -> None:
    first, second = instances(tmp_path, shared_database, sink.port)
    for layout in (first, second):
        sweep_setup(layout)
    # The record, written three hours ago by one relay on an injected clock: a question the mentor has
    # not answered (a nudge is due), a held message nobody reviewed (a reminder is due), a pair closed
    # with a one-hour retention (its purge is due).
    clock = FixedClock(datetime.now(UTC) - timedelta(hours=3))
    relay = Relay(load_settings(first.config), clock=clock)
    await relay.start()
    try:
        waiting = await create_pair(relay.settings, relay.engine, clock, program_id="stem",
                                    mentor=Person("oak@uni.example", "Olga Kern", "Oak"),
                                    mentee=Person("maple@mail.example", "Mia Lund", "Maple"))
        closing = await create_pair(relay.settings, relay.engine, clock, program_id="stem",
                                    mentor=Person("elm@uni.example", "Emil Roth", "Elm"),
                                    mentee=Person("fir@mail.example", "Fay Dorn", "Fir"))
        for pair, subject, body in ((waiting, "A question", "What should I read first?"),
                                    (waiting, "Coffee", "Could we meet up on Friday?"),
                                    (closing, "Thanks", "Thank you for everything.")):
            to = pair.mentor.alias_address(DOMAIN)
            code, reply = await send(first.smtp_port, simple_message(pair.mentee.email, to, subject, body),
                                     pair.mentee.email, to)
            assert code == 250, reply
        await close_pair(relay.settings, relay.engine, clock, closing.id)
        await eventually(lambda: queue_idle(first), timeout=30)
    finally:
        await relay.stop()
    before = len(sink.received)

    async with aserving([first, second], tmp_path):  # each instance sweeps at once when it starts
        for layout in (first, second):
            await eventually(lambda layout=layout: sweeps_run(layout), timeout=60, interval=0.2)
        await eventually(lambda: queue_idle(first), timeout=30, interval=0.1)
        kinds = await event_kinds(first)
        verified = await acli(first, "archive", "verify")
    swept = [(received.rcpt_tos, str(received.message["Subject"])) for received in sink.received[before:]]
    assert kinds.count("nudge.first") == 1 and kinds.count("held_reminder") == 1
    assert kinds.count("archive.purge") == 1
    assert [rcpt for rcpt, _ in swept].count(["oak@uni.example"]) == 1, swept  # one nudge for the mentor
    assert [rcpt for rcpt, _ in swept].count([MODERATOR]) == 1, swept  # one reminder for the moderators
    assert len(swept) == 2, swept
    assert verified.returncode == 0, verified.stdout + verified.stderr


class StallingHandler(SinkHandler):
    """A smarthost that takes the message but does not answer while `stalling` is set (a send under way)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalling = True
        self.stalled = 0
        self._go = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.stalling:
            self.stalled += 1
            await self._go.wait()  # cancelled when the sending instance dies and its connection drops
        return await super().handle_DATA(server, session, envelope)

    def release(self) -> None:
        self.stalling = False
        self._go.set()


async def test_a_killed_instances_claimed_deliveries_are_sent_by_the_other_after_the_lease(
        tmp_path: Path, shared_database: str) -> None:
    handler = StallingHandler()
    sink = Sink()
    sink.handler = handler
    await sink.start()
    try:
        first, second = instances(tmp_path, shared_database, sink.port, delivery={"lease": "2s"})
        count = 6
        async with aserving([first], tmp_path) as (dying,):
            pair = await acreate_pair(first)
            for number in range(count):
                code, reply = await send(first.smtp_port, simple_message(
                    MENTEE["email"], pair["mentor_alias"], f"Claimed {number}", "hello"),
                    MENTEE["email"], pair["mentor_alias"])
                assert code == 250, reply
            await eventually(lambda: handler.stalled >= 1, timeout=30)  # the first instance is sending
            owner = f"{socket.gethostname()}:{first.smtp_port}"  # an instance's name in its claims
            claimed = {row.id for row in await rows(first, select(outbound.c.id).where(
                outbound.c.claimed_by == owner, outbound.c.state == "queued"))}
            await asyncio.to_thread(dying.kill)  # SIGKILL: no shutdown, its claims stay in the store
        assert claimed, "the first instance claimed nothing before it was killed"
        handler.release()
        async with aserving([second], tmp_path):
            await sink.wait_for(count, timeout=60)
            await eventually(lambda: queue_idle(second), timeout=30, interval=0.1)
            sent = {row.id for row in await rows(second, select(outbound.c.id).where(outbound.c.state == "sent"))}
    finally:
        await sink.stop()
    subjects = sorted(str(received.message["Subject"]) for received in sink.received)
    assert subjects == [f"Claimed {number}" for number in range(count)]  # each once, by the second instance
    assert claimed <= sent and len(sent) == count
