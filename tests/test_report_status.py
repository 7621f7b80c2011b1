"""The report counts pairs by their status (ended and paused pairs are neither active nor silent) and counts
the messages the policy rejected automatically, on a program scripted through the real relay."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.endings import close_pair
from tests.nudging import enrol, running, write, write_program
from tests.support import DOMAIN, Layout, Sink, acli, acli_json, send, simple_message

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday
REJECT_CONTACTS = """
    default_action: deliver
    rules:
      contact_info:
        action: reject
    notices:
      rejected: null
"""


HANDLES = iter(["Oak", "Elm", "Ash", "Fir", "Yew", "Bay", "Box", "Fig", "Lime", "Pear"])


def person(name: str, role: str) -> tuple[str, str, str, None]:
    return (f"{name.lower()}.{role}@{role}s.example", f"{name} Person", next(HANDLES), None)


async def test_ended_and_paused_pairs_are_counted_apart_and_automatic_rejections_count(
        layout: Layout, sink: Sink) -> None:
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(REJECT_CONTACTS))
    write_program(layout, timezone="UTC")
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        active = await enrol(relay, clock, person("Ada", "mentor"), person("Ben", "mentee"))
        silent = await enrol(relay, clock, person("Cy", "mentor"), person("Dee", "mentee"))
        paused = await enrol(relay, clock, person("Eve", "mentor"), person("Fay", "mentee"))
        ended = await enrol(relay, clock, person("Gus", "mentor"), person("Hal", "mentee"), end_date="2026-03-05")
        closed = await enrol(relay, clock, person("Ivy", "mentor"), person("Jo", "mentee"))
        await write(relay, active, "mentee", "Hello", "Can I ask about physics?")
        await write(relay, active, "mentee", "Number", "Call me on +1 415 555 0123 tonight.")  # rejected
        await write(relay, ended, "mentee", "Mail", "Write to me at hal.private@home.example please.")  # rejected
        await close_pair(relay.settings, relay.engine, clock, closed.id)
        # a concern from the mentee pauses the pair
        mentee = paused.mentee.email
        code, reply = await send(relay.settings.relay.smtp.port,
                                 simple_message(mentee, f"concern@{DOMAIN}", "concern", "Something worries me."),
                                 mentee, f"concern@{DOMAIN}")
        assert code == 250, reply
        clock.advance(timedelta(days=8))
        await write(relay, active, "mentor", "Re: Hello", "Happy to help.")
        await relay.sweep_nudges()  # the end date has passed: the pair has ended
    now = START + timedelta(days=8, hours=1)

    figures = await acli_json(layout, "report", "--program", "stem", "--json", "--now", now.isoformat())
    assert figures["pairs"] == {"total": 5, "active": 1, "silent": 1, "paused": 1, "ended": 1, "closed": 1}
    assert silent.id not in (paused.id, ended.id)
    assert figures["moderation"]["rejected_automatically"] == 2
    assert figures["moderation"]["rejected"] == 0  # by a moderator

    text = (await acli(layout, "report", "--program", "stem", "--now", now.isoformat())).stdout
    assert "pairs: 5 (1 active, 1 silent, 1 paused, 1 ended, 1 closed)" in text
    assert "2 rejected automatically" in text and "0 rejected by a moderator" in text
