"""A conversation's status gates every way its members' mail leaves: while a concern has a pair or group
paused nothing of it is delivered (a daily digest, a copy waiting for a retry, a moderator's release), and it
all goes out after `pair resume` / `group resume`. Once it is closed, what its members wrote before the close
is delivered (waiting digests at once), unless a concern had paused it, when it is never sent; a moderator's
release of mail written after the close is refused (mail to a closed conversation is archived, not delivered).

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
from relay.store.schema import held, outbound
from tests.consolekit import add_moderator, csrf_of, serving, session, token_for
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
from tests.test_moderation import MODERATOR, use_policy

# 10:00 in New York, the program's time zone; later than the real time at which the command line (on the
# system clock) queues a farewell, so that the relay's delivery, on this clock, finds it due
T0 = datetime(2030, 6, 3, 14, 0, tzinfo=UTC)
SECRET = "Who wants to meet me after school on Friday? Don't tell your parents, it's our surprise."
MENTEES = [p["email"] for p in PEOPLE if p["role"] == "mentee"]
URGENT = f"""
    default_action: deliver
    rules:
      keywords:
        - name: worry
          action: hold
          severity: urgent
          words: [scared to go home]
    moderators:
      notify: [{MODERATOR}]
"""
SCARED = "I am scared to go home tonight. Can anyone meet me at the station?"


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


async def held_state(layout: Layout, message_id: str) -> str:
    ((state,),) = await rows(layout, select(held.c.state).where(held.c.message_id == message_id))
    return str(state)


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


async def test_a_closed_groups_copies_waiting_for_a_digest_go_out_at_the_close(layout: Layout, sink: Sink) -> None:
    """A group closed at the end of its term before its daily digest went out: what its members last wrote is
    not lost with it; the copies waiting for the digest are delivered at the close, beside the farewells."""
    write_program(layout, group_digest="daily")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        group = await asyncio.to_thread(make_group, layout)
        await write_to(layout, MENTOR, group["alias"], "Meet up?", SECRET)
        closed = await acli(layout, "group", "close", str(group["id"]), "--reason", "term over")
        assert closed.returncode == 0, closed.stderr
        relay.worker.wake()
        await sink.handler.wait_until(lambda got: len(carrying(sink, "surprise")), 3, timeout=20, what="copies")
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert carrying(sink, "surprise") == sorted(MENTEES)
        farewells = sorted([*(p["email"] for p in PEOPLE), "coordinator@school.example"])
        assert carrying(sink, "term over") == farewells  # the members' farewells, the coordinator's notice
        assert await rows(layout, select(outbound.c.id).where(outbound.c.state.in_(("withheld", "digest")))) == []


async def test_a_group_closed_after_a_concern_never_sends_its_waiting_copies(layout: Layout, sink: Sink) -> None:
    """A group closed while Maple's concern had it paused: the members get their farewell, never the digest of
    the message written before the close; the copies are kept, listed as withheld."""
    write_program(layout, group_digest="daily")
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    async with running(layout, clock) as relay:
        group = await asyncio.to_thread(make_group, layout)
        await write_to(layout, MENTOR, group["alias"], "Meet up?", SECRET)
        await raise_concern(layout)
        assert await status_of_group(layout, group["id"]) == "paused"
        closed = await acli(layout, "group", "close", str(group["id"]), "--reason", "after the concern")
        assert closed.returncode == 0, closed.stderr
        clock.advance(timedelta(days=1))
        result = await sweep.run(settings, relay.engine, clock)
        assert result.sent == []
        relay.worker.wake()
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert carrying(sink, "surprise") == []
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


async def test_the_release_of_mail_written_to_a_closed_group_is_refused(layout: Layout, sink: Sink,
                                                                       relay: Any) -> None:
    """Maple writes to her closed group that she is scared to go home: held as urgent, as it should be. A
    release from the command line is refused in one line (exit 1): the group was closed, its mail is archived,
    not delivered; the message stays held and nobody gets it. A rejection dismisses it."""
    use_policy(layout, URGENT)
    group = await asyncio.to_thread(make_group, layout)
    closed = await acli(layout, "group", "close", str(group["id"]), "--reason", "term over")
    assert closed.returncode == 0, closed.stderr
    message_id = await write_to(layout, MENTEE, group["alias"], "after the end", SCARED)
    await add_moderator(layout, "ana", "stem")
    released = await acli(layout, "held", "release", message_id, "--moderator", "ana")
    assert released.returncode == 1
    assert len(released.stderr.strip().splitlines()) == 1, released.stderr
    assert "Robotics" in released.stderr and "was closed" in released.stderr
    assert "archived, not delivered" in released.stderr and "Nothing was done" in released.stderr
    assert await held_state(layout, message_id) == "held"
    shown = await acli(layout, "held", "show", message_id)
    assert "the group is closed: a release is refused" in shown.stdout
    await eventually(lambda: nothing_queued(layout), timeout=20)
    assert carrying(sink, "station") == []
    rejected = await acli(layout, "held", "reject", message_id, "--moderator", "ana", "--reason", "group closed")
    assert rejected.returncode == 0, rejected.stderr
    assert await held_state(layout, message_id) == "rejected"
    await eventually(lambda: nothing_queued(layout), timeout=20)
    assert carrying(sink, "station") == []


async def test_the_console_refuses_to_release_mail_written_to_a_closed_pair(layout: Layout, sink: Sink) -> None:
    """The same for a pair closed by hand, in the console: the held page says why it cannot be released and
    offers no Release button; a release posted anyway (the page, the JSON API) is refused with the reason,
    and Oak gets nothing."""
    use_policy(layout, URGENT)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "moved school")
        assert closed.returncode == 0, closed.stderr
        message_id = await write_to(layout, MENTEE, pair["mentor_alias"], "after the end", SCARED)
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{message_id}")
            assert page.status_code == 200
            for form in ({"confirm": "yes"}, {}):  # past the urgent confirmation, and before it
                response = await client.post(f"/held/{message_id}/release",
                                             data={"csrf_token": csrf_of(page.text), **form})
                assert response.status_code == 409, response.text
                assert "archived, not delivered" in response.text and "Nothing was done" in response.text
            api = {"authorization": f"Bearer {await token_for(layout, 'ana')}"}
            response = await client.post(f"/api/held/{message_id}/release", headers=api)
            assert response.status_code == 409
            assert f"Pair {pair['id']} was closed" in response.json()["error"]
            assert "not releasable" in page.text and f"Pair {pair['id']} was closed" in page.text
            assert f'action="/held/{message_id}/release"' not in page.text
        assert await held_state(layout, message_id) == "held"
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert carrying(sink, "station") == []


async def test_mail_held_while_a_pair_is_paused_is_released_only_after_the_resume(layout: Layout, sink: Sink,
                                                                                 relay: Any) -> None:
    """Oak writes to the pair Maple's concern paused: held. A release now is refused (the pause is there for
    safety: nothing is delivered until a coordinator resumes the pair); after `pair resume` it goes out."""
    pair = await acreate_pair(layout)
    await raise_concern(layout)
    message_id = await write_to(layout, MENTOR, pair["mentee_alias"], "Friday", "See you on Friday at the lab.")
    await add_moderator(layout, "ana", "stem")
    released = await acli(layout, "held", "release", message_id, "--moderator", "ana")
    assert released.returncode == 1
    assert f"Pair {pair['id']} is paused after a concern" in released.stderr
    assert f"mentor-relay pair resume {pair['id']}" in released.stderr
    assert await held_state(layout, message_id) == "held"
    resumed = await acli(layout, "pair", "resume", str(pair["id"]))
    assert resumed.returncode == 0, resumed.stderr
    released = await acli(layout, "held", "release", message_id, "--moderator", "ana")
    assert released.returncode == 0, released.stderr
    await sink.handler.wait_until(lambda got: len(carrying(sink, "at the lab")), 1, timeout=20, what="copies")
    assert carrying(sink, "at the lab") == [MENTEE["email"]]
