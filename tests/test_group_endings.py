"""A group ends with its program's end date, as a pair does, through a real relay, SQLite and SMTP on an
injected clock: a week before, every member is told the last day (in their language, a youth program's
mentees in the youth wording); when it has passed the sweep marks the group ended and every member gets a
farewell, once; later mail to the group is archived, not passed on, and its sender told; `group close`
afterwards writes to nobody again. A group closed by hand before its end gets nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from relay.clock import FixedClock
from relay.enrol import Person
from relay.groups import add_member, close_group, create_group
from relay.nudges import sweep
from relay.service import Relay
from relay.store.conversations import Conversation
from tests.nudging import notices_in, running, wait_for_notices, words, write_program
from tests.support import DOMAIN, Layout, Sink, acli_json, eventually, nothing_queued, send, simple_message

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 10:00 in New York, the program's zone
END = "2026-06-30"  # the program's last day: the group ends at midnight after it, New York time
OAK = ("mentor", Person("oak.mentor@uni.example.net", "Josef Brandt", "Oak"))
MAPLE = ("mentee", Person("maple.student@mail.example.org", "Jane Doe", "Maple", language="es"))
BIRCH = ("mentee", Person("birch.student@mail.example.org", "Ravi Patel", "Birch"))
COORDINATOR = "coordinator@school.example"


async def make(relay: Relay, clock: FixedClock, name: str, *people: tuple[str, Person]) -> Conversation:
    group = await create_group(relay.settings, relay.engine, clock, program_id="stem", name=name)
    for role, person in people:
        group = (await add_member(relay.settings, relay.engine, clock, group.id, role=role, person=person)).group
    return group


async def sweep_at(relay: Relay, clock: FixedClock, when: datetime) -> sweep.SweepResult:
    clock.advance(when - clock.now())
    return await sweep.run(relay.settings, relay.engine, clock)


def sent_of(result: sweep.SweepResult, kind: str) -> list[tuple[int, str | None]]:
    return sorted((p.pair_id, p.to_handle) for p in result.sent if p.kind == kind)


def inbox(sink: Sink, address: str, seen: int = 0) -> list[EmailMessage]:
    return [r.message for r in notices_in(sink)[seen:] if r.rcpt_tos == [address]]


async def test_a_group_ends_with_its_programs_end_date(layout: Layout, sink: Sink) -> None:
    write_program(layout, audience="youth", end_date=END)
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        group = await make(relay, clock, "Robotics", OAK, MAPLE, BIRCH)
        chess = await make(relay, clock, "Chess", OAK, BIRCH)
        assert await close_group(relay.settings, relay.engine, clock, chess.id, "merged into Robotics")
        alias = group.alias_address(DOMAIN) or ""
        code, reply = await send(relay.settings.relay.smtp.port,
                                 simple_message(MAPLE[1].email, alias, "Hola", "¿Qué construimos?"),
                                 MAPLE[1].email, alias)
        assert code == 250, reply
        # a week before the end (midnight after 30 June in New York: 04:00 UTC on 1 July), not yet (the silent
        # group's check-ins go out)
        assert sent_of(await sweep_at(relay, clock, datetime(2026, 6, 23, 14, tzinfo=UTC)), "ending_soon") == []
        await eventually(lambda: nothing_queued(layout), timeout=20)
        seen = len(notices_in(sink))
        soon = await sweep_at(relay, clock, datetime(2026, 6, 24, 14, tzinfo=UTC))
        assert sent_of(soon, "ending_soon") == [(group.id, "Birch"), (group.id, "Maple"), (group.id, "Oak")]
        assert sent_of(await sweep.run(relay.settings, relay.engine, clock), "ending_soon") == []  # once each
        await wait_for_notices(sink, seen + 3)
        [maple], [birch], [oak] = (inbox(sink, p.email, seen) for _, p in (MAPLE, BIRCH, OAK))
        assert maple["Content-Language"] == "es" and str(maple["Subject"]) == "Robotics termina el 30 de junio de 2026"
        assert "Tu grupo Robotics de STEM mentoring termina el 30 de junio de 2026." in words(maple)  # youth
        assert str(birch["Subject"]) == "Robotics ends on 30 June 2026"
        assert "Your group Robotics in STEM mentoring ends on 30 June 2026." in words(birch)
        assert "The group Robotics in STEM mentoring ends on 30 June 2026." in words(oak)  # an adult's wording
        assert "As a mentor of the group, please write it a last message" in words(oak)
        for message, own in ((maple, MAPLE), (birch, BIRCH), (oak, OAK)):  # handles only
            others = [w for _, p in (MAPLE, BIRCH, OAK) if p is not own[1] for w in (p.email, p.name)]
            assert not any(secret in message.as_string() for secret in others)
        seen = len(notices_in(sink))

        # the end has passed: the group is ended, every member gets a farewell, once
        ended = await sweep_at(relay, clock, datetime(2026, 7, 1, 14, tzinfo=UTC))
        assert ended.ended == [group.id] and f"group {group.id} ended (its end date has passed)" in ended.lines()
        assert sent_of(ended, "farewell") == [(group.id, "Birch"), (group.id, "Maple"), (group.id, "Oak")]
        assert sent_of(await sweep.run(relay.settings, relay.engine, clock), "farewell") == []
        await wait_for_notices(sink, seen + 3)
        [maple], [birch], [oak] = (inbox(sink, p.email, seen) for _, p in (MAPLE, BIRCH, OAK))
        assert maple["Content-Language"] == "es" and str(maple["Subject"]) == "Robotics ha llegado a su fin"
        assert words(maple).startswith("Hola, Maple: Tu grupo Robotics de STEM mentoring ha terminado.")
        assert words(birch).startswith("Hi Birch, Your group Robotics in STEM mentoring has ended.")
        assert "The group Robotics in STEM mentoring has come to its end." in words(oak)
        shown = await acli_json(layout, "group", "show", str(group.id), "--json")
        assert shown["status"] == "ended" and "group.ended" in [e["kind"] for e in shown["events"]]
        assert (await acli_json(layout, "group", "show", str(chess.id), "--json"))["status"] == "closed"
        seen = len(notices_in(sink))

        # later mail to the group is archived, not passed on; its sender is told
        code, reply = await send(relay.settings.relay.smtp.port,
                                 simple_message(MAPLE[1].email, alias, "¿Seguís aquí?", "Hola"),
                                 MAPLE[1].email, alias)
        assert code == 250, reply
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert [r.rcpt_tos for r in sink.received[-1:]] == [[MAPLE[1].email]]
        assert not any("Seguís" in str(r.message["Subject"]) for r in sink.received)
        assert str(inbox(sink, MAPLE[1].email, seen)[0]["Subject"]) == "Robotics ha terminado"

        # closing it now writes to no member again; the coordinator is told they had their farewell
        assert await close_group(relay.settings, relay.engine, clock, group.id)  # on the relay's clock
        relay.worker.wake()
        await eventually(lambda: nothing_queued(layout), timeout=20)
        later = notices_in(sink)[seen + 1:]
        assert [r.rcpt_tos for r in later] == [[COORDINATOR]]
        assert "had already been sent a farewell when the group's end date passed" in words(later[0].message)

        # and a week on, nothing more for either group (Chess, closed by hand before its end, had its farewell)
        quiet = await sweep_at(relay, clock, datetime(2026, 7, 8, 14, tzinfo=UTC))
        assert [p for p in quiet.sent if p.pair_id in (group.id, chess.id)] == []
