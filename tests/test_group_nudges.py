"""Nudges for groups, through a real relay, SQLite and SMTP on an injected clock: a mentee's message to
the group that no mentor answers nudges every mentor after nudge_mentor_after, again later, and the
coordinator is told once; a mentor writing ends it; a private word between mentees waits for nobody, and
one to a mentor for that mentor alone; a mentor back from away is reminded from their return; a silent
group gets a check-in for every member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.enrol import Person
from relay.groups import add_member, create_group
from relay.nudges import sweep
from relay.service import Relay
from relay.store.conversations import Conversation
from tests.nudging import running, wait_for_notices, words
from tests.support import DOMAIN, Layout, Sink, send, simple_message

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 10:00 in New York, the program's zone
PEOPLE = [("mentor", "oak.mentor@uni.example.net", "Josef Brandt", "Oak"),
          ("mentor", "ash.mentor@lab.example.org", "Ada Byron", "Ash"),
          ("mentee", "maple.student@mail.example.org", "Jane Doe", "Maple"),
          ("mentee", "birch.student@mail.example.org", "Ravi Patel", "Birch")]


async def make(relay: Relay, clock: FixedClock) -> Conversation:
    group = await create_group(relay.settings, relay.engine, clock, program_id="stem", name="Robotics")
    for role, email, name, handle in PEOPLE:
        group = (await add_member(relay.settings, relay.engine, clock, group.id, role=role,
                                  person=Person(email, name, handle))).group
    return group


async def write(relay: Relay, group: Conversation, handle: str, subject: str, to: str | None = None) -> None:
    sender = next(m for m in group.members if m.handle == handle)
    rcpt = to or group.alias_address(DOMAIN) or ""
    code, text = await send(relay.settings.relay.smtp.port, simple_message(sender.email, rcpt, subject, "Hello!"),
                            sender.email, rcpt)
    assert code == 250, text


async def run(relay: Relay, clock: FixedClock) -> list[tuple[str, str | None]]:
    return sorted((p.kind, p.to_handle) for p in (await sweep.run(relay.settings, relay.engine, clock)).sent)


async def test_an_unanswered_mentee_in_a_group_nudges_every_mentor(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        group = await make(relay, clock)
        birch_alone = next(m for m in group.members if m.handle == "Birch").alias_address(DOMAIN)
        await write(relay, group, "Maple", "Private: can you help?", to=birch_alone)  # waits for no mentor
        clock.advance(timedelta(hours=50))
        assert await run(relay, clock) == []
        await write(relay, group, "Maple", "How do I wire the motor?")
        clock.advance(timedelta(hours=47))
        assert await run(relay, clock) == []
        clock.advance(timedelta(hours=1))
        assert await run(relay, clock) == [("nudge.first", "Ash"), ("nudge.first", "Oak")]
        assert await run(relay, clock) == []  # once only
        nudges = [r for r in await wait_for_notices(sink, 2) if "waiting" in str(r.message["Subject"])]
        assert sorted(r.rcpt_tos[0] for r in nudges) == [PEOPLE[1][1], PEOPLE[0][1]]
        text = words(nudges[0].message)
        assert "Maple wrote to the group Robotics and is waiting for a mentor's answer" in text
        assert "How do I wire the motor?" in text
        assert not [w for w in ("Jane", "Doe", "Josef", "Ada", "maple.student") if w in nudges[0].message.as_string()]
        clock.advance(timedelta(hours=48))
        assert await run(relay, clock) == [("nudge.second", "Ash"), ("nudge.second", "Oak")]
        await wait_for_notices(sink, 4)  # the reminders in before the escalation is queued: it is the fifth in
        clock.advance(timedelta(hours=72))
        assert await run(relay, clock) == [("nudge.escalation", None)]
        escalation = (await wait_for_notices(sink, 5))[-1]
        assert escalation.rcpt_tos == ["coordinator@school.example"]
        assert "group Robotics" in words(escalation.message) and "(Oak, Ash)" in words(escalation.message)
        # One mentor answers the group: the wait is over for everyone.
        await write(relay, group, "Ash", "Re: How do I wire the motor?")
        await write(relay, group, "Maple", "Thanks!")  # a new wait starts from here
        clock.advance(timedelta(hours=47))
        assert await run(relay, clock) == []


async def test_a_silent_group_gets_a_check_in(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        group = await make(relay, clock)
        clock.advance(timedelta(days=13))
        assert await run(relay, clock) == []
        clock.advance(timedelta(days=1))
        assert await run(relay, clock) == sorted(("nudge.checkin", h) for *_, h in PEOPLE)
        assert await run(relay, clock) == []
        checkins = await wait_for_notices(sink, 4)
        assert sorted(r.rcpt_tos[0] for r in checkins) == sorted(p[1] for p in PEOPLE)
        text = words(checkins[0].message)
        assert "The group Robotics in STEM mentoring has not started yet" in text
        assert group.alias_address(DOMAIN) in text


async def test_a_private_word_to_a_mentor_waits_for_that_mentor_alone(layout: Layout, sink: Sink) -> None:
    """Maple writes privately to Oak, then to the group. Only Oak is reminded of the private word, in words
    that say it was written to them privately; Ash, who never got it, is reminded of the group's message
    only and never shown the private one's subject; the coordinator hears of each, the private one as
    waiting for Oak alone."""
    private = "Only for you Oak: my parents are splitting up"
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        group = await make(relay, clock)
        oak, ash = (next(m for m in group.members if m.handle == h) for h in ("Oak", "Ash"))
        await write(relay, group, "Maple", private, to=oak.alias_address(DOMAIN))
        clock.advance(timedelta(hours=1))
        await write(relay, group, "Maple", "How do I wire the motor?")
        clock.advance(timedelta(hours=47))
        assert await run(relay, clock) == [("nudge.first", "Oak")]
        clock.advance(timedelta(hours=1))
        assert await run(relay, clock) == [("nudge.first", "Ash")]
        clock.advance(timedelta(hours=48))
        assert await run(relay, clock) == [("nudge.second", "Ash"), ("nudge.second", "Oak")]
        clock.advance(timedelta(hours=71))  # a week after the private word, an hour short for the group's
        assert await run(relay, clock) == [("nudge.escalation", None)]
        clock.advance(timedelta(hours=1))
        assert await run(relay, clock) == [("nudge.escalation", None)]
        received = await wait_for_notices(sink, 6)
        to_oak = [words(r.message) for r in received if r.rcpt_tos == [oak.email]]
        assert "Maple wrote to you privately in the group Robotics and is waiting for your answer" in to_oak[0]
        assert private in to_oak[0]
        to_ash = [words(r.message) for r in received if r.rcpt_tos == [ash.email]]
        assert len(to_ash) == 2 and "Maple wrote to the group Robotics" in to_ash[0]
        assert not [text for text in to_ash if "parents" in text]
        coordinator = [words(r.message) for r in received if r.rcpt_tos == ["coordinator@school.example"]]
        assert ("the mentee Maple has waited 7 days for an answer from the mentor Oak, to whom they wrote "
                "privately") in coordinator[0] and private in coordinator[0]
        assert "from the group's mentors (Oak, Ash)" in coordinator[1] and "parents" not in coordinator[1]


async def test_a_mentor_back_from_away_is_reminded_from_their_return(layout: Layout, sink: Sink) -> None:
    """Oak is away until 5 June (New York, the program's zone) when Maple writes to the group on 1 June:
    Ash is reminded as usual and the coordinator told a week after (Ash was there to answer); Oak's
    reminders start from the return, the first two days after it, not the second at once."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        group = await make(relay, clock)
        code, text = await send(relay.settings.relay.smtp.port, simple_message(
            PEOPLE[0][1], f"away@{DOMAIN}", "until 2026-06-05", "Travelling"), PEOPLE[0][1], f"away@{DOMAIN}")
        assert code == 250, text
        await write(relay, group, "Maple", "How do I wire the motor?")
        sent: list[tuple[datetime, str, str | None]] = []
        while clock.now() < datetime(2026, 6, 9, 14, 0, tzinfo=UTC):
            clock.advance(timedelta(hours=1))
            sent += [(clock.now(), kind, handle) for kind, handle in await run(relay, clock)]
    back = datetime(2026, 6, 6, 4, 0, tzinfo=UTC)  # 6 June begins in New York
    assert sent == [
        (T0 + timedelta(days=2), "nudge.first", "Ash"),
        (T0 + timedelta(days=4), "nudge.second", "Ash"),
        (back + timedelta(hours=56), "nudge.first", "Oak"),  # due at midnight in New York: at 08:00 there
        (T0 + timedelta(days=7), "nudge.escalation", None),
    ]
