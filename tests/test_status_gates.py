"""A conversation's status gates every way its members' mail leaves: while a concern has a pair or group
paused nothing of it is delivered (a daily digest, a copy waiting for a retry, a moderator's release), and it
all goes out after `pair resume` / `group resume`; once it is closed, mail waiting for it is never sent and a
moderator's release is refused (mail to a closed conversation is archived, not delivered).

Through real SMTP into the relay, a real sink as the smarthost, the real CLI and the console over HTTP; the
digest sweep runs on an injected clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from relay.clock import FixedClock
from relay.config import load_settings
from relay.digests import sweep
from relay.store.schema import outbound
from tests.nudging import running, write_program
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acreate_pair,
    eventually,
    nothing_queued,
    rows,
    send,
    simple_message,
)
from tests.test_groups import PEOPLE, make_group

# 10:00 in New York, the program's time zone; later than the real time at which the command line (on the
# system clock) queues a farewell, so that the relay's delivery, on this clock, finds it due
T0 = datetime(2030, 6, 3, 14, 0, tzinfo=UTC)
SECRET = "Who wants to meet me after school on Friday? Don't tell your parents, it's our surprise."
MENTEES = [p["email"] for p in PEOPLE if p["role"] == "mentee"]


async def write_to(layout: Layout, person: dict[str, str], to: str, subject: str, body: str) -> str:
    """`person` writes to `to` from their enrolled address; returns the queue id the relay answered with."""
    code, reply = await send(layout.smtp_port, simple_message(f"{person['name']} <{person['email']}>", to, subject,
                                                              body), person["email"], to)
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]


async def raise_concern(layout: Layout) -> None:
    """Jane (Maple) writes to concern@: her pairs and groups are paused."""
    await write_to(layout, MENTEE, f"concern@{DOMAIN}", "concern", "The mentor asked us to meet secretly.")


def carrying(sink: Sink, text: str, since: int = 0) -> list[str]:
    """The recipients of the mail that arrived (from `since` on) with `text` anywhere in it."""
    return sorted(r.rcpt_tos[0] for r in sink.received[since:] if text in r.raw.decode("utf-8", "replace"))


async def status_of_group(layout: Layout, group_id: int) -> str:
    shown = await acli(layout, "group", "show", str(group_id), "--json")
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["status"])


async def test_a_paused_groups_digest_waits_for_the_resume(layout: Layout, sink: Sink) -> None:
    """Oak's message to a group on a daily digest is not in the next morning's digest while Maple's concern
    has the group paused; after `group resume` the next sweep delivers it to the three mentees."""
    write_program(layout, group_digest="daily")
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    async with running(layout, clock) as relay:
        group = await asyncio.to_thread(make_group, layout)
        await write_to(layout, MENTOR, group["alias"], "Meet up?", SECRET)
        await raise_concern(layout)
        assert await status_of_group(layout, group["id"]) == "paused"
        await eventually(lambda: nothing_queued(layout), timeout=20)
        start = len(sink.received)
        clock.advance(timedelta(days=1))
        result = await sweep.run(settings, relay.engine, clock)
        assert result.sent == [] and result.paused == [group["id"]]
        relay.worker.wake()
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert carrying(sink, "surprise", start) == []
        resumed = await acli(layout, "group", "resume", str(group["id"]))
        assert resumed.returncode == 0, resumed.stderr
        result = await sweep.run(settings, relay.engine, clock)
        assert sorted(d["member"] for d in result.sent) == sorted(
            group["members"][p["handle"]] for p in PEOPLE if p["role"] == "mentee")
        relay.worker.wake()
        await sink.handler.wait_until(lambda got: len(carrying(sink, "surprise", start)), 3, timeout=20, what="digests")
        assert carrying(sink, "surprise", start) == sorted(MENTEES)


async def test_a_closed_groups_copies_waiting_for_a_digest_are_never_sent(layout: Layout, sink: Sink) -> None:
    """A group closed before its daily digest went out: the members get their farewell, never the digest of
    the message written before the close; the copies are kept, listed as withheld."""
    write_program(layout, group_digest="daily")
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    async with running(layout, clock) as relay:
        group = await asyncio.to_thread(make_group, layout)
        await write_to(layout, MENTOR, group["alias"], "Meet up?", SECRET)
        closed = await acli(layout, "group", "close", str(group["id"]), "--reason", "term over")
        assert closed.returncode == 0, closed.stderr
        clock.advance(timedelta(days=1))
        result = await sweep.run(settings, relay.engine, clock)
        assert result.sent == []
        relay.worker.wake()
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert carrying(sink, "surprise") == []
        farewells = sorted([*(p["email"] for p in PEOPLE), "coordinator@school.example"])
        assert carrying(sink, "term over") == farewells  # the members' farewells, the coordinator's notice
        withheld = json.loads((await acli(layout, "queue", "list", "--state", "withheld", "--json")).stdout)
        assert [(e["pair_id"], e["last_error"]) for e in withheld] == [
            (group["id"], "not sent: the conversation closed before it left")] * 3
        kept = await rows(layout, select(outbound.c.rcpt).where(outbound.c.state == "withheld"))
        assert sorted(r.rcpt for r in kept) == sorted(MENTEES)


async def test_a_pairs_copy_waiting_for_a_retry_waits_while_the_pair_is_paused(layout: Layout, sink: Sink) -> None:
    """Oak's message was greylisted once and waits for its retry when Maple's concern pauses the pair: the
    retry does not send it while the pair is paused (another pair's mail goes out meanwhile); `pair resume`
    lets it go."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await acreate_pair(layout)
        other = await acreate_pair(layout, {"email": "ravi.patel@studio.example.net", "name": "Ravi Patel",
                                            "handle": "Willow"},
                                   {"email": "lena.fischer@pupil.example.org", "name": "Lena Fischer",
                                    "handle": "Brook"})
        await eventually(lambda: nothing_queued(layout), timeout=20)
        sink.handler.scripted = ["451 4.7.1 greylisted, come back later"]
        await write_to(layout, MENTOR, pair["mentee_alias"], "Friday", SECRET)

        async def copies() -> list[Any]:
            return await rows(layout, select(outbound.c.id, outbound.c.state, outbound.c.attempts).where(
                outbound.c.kind == "relay", outbound.c.pair_id == pair["id"]))

        (copy,) = await eventually(lambda: _when(copies(), lambda found: [r.attempts for r in found] == [1]),
                                   timeout=20)
        await raise_concern(layout)

        async def queued() -> list[str]:
            return [r.id for r in await rows(layout, select(outbound.c.id).where(outbound.c.state == "queued"))]

        await eventually(lambda: _when(queued(), lambda ids: ids == [copy.id]), timeout=20)  # the concern's mail out
        clock.advance(timedelta(minutes=5))  # the retry is due
        await write_to(layout, {"email": "ravi.patel@studio.example.net", "name": "Ravi Patel"},
                       other["mentee_alias"], "Robots", "The robot kit came today.")
        relay.worker.wake()
        await sink.handler.wait_until(lambda got: len(carrying(sink, "robot kit")), 1, timeout=20, what="copies")
        assert carrying(sink, "surprise") == []  # claimed after the retry fell due, with the other pair's copy
        assert [(r.state, r.attempts) for r in await copies()] == [("queued", 1)]
        resumed = await acli(layout, "pair", "resume", str(pair["id"]))
        assert resumed.returncode == 0, resumed.stderr
        relay.worker.wake()
        await sink.handler.wait_until(lambda got: len(carrying(sink, "surprise")), 1, timeout=20, what="copies")
        assert carrying(sink, "surprise") == [MENTEE["email"]]


async def _when(read: Any, ready: Any) -> Any:
    """`read`'s result when `ready` says so, else None (for `eventually`)."""
    found = await read
    return found if ready(found) else None
