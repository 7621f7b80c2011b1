"""Away mode: by mail to away@ and by `pair away`; the partner is told, nudges pause, auto-replies
are not announced, only participants may use the address."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.nudges import sweep
from relay.service import Relay
from relay.store.events import list_events
from tests.nudging import enrol, notices_in, running, wait_for_notices, words, write
from tests.support import DOMAIN, MENTEE, MENTOR, Layout, Sink, acli, acreate_pair, send, simple_message

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
OAK = ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", "Europe/Berlin")
MAPLE = ("maple.student@mail.example.org", "Jane Doe", "Maple", None)
AWAY = f"away@{DOMAIN}"


async def to_away(relay: Relay, sender: str, subject: str, header_from: str | None = None) -> tuple[int, str]:
    port = relay.settings.relay.smtp.port
    return await send(port, simple_message(header_from or sender, AWAY, subject, "Thanks!"), sender, AWAY)


async def kinds(relay: Relay, prefix: str) -> list[str]:
    async with relay.engine.connect() as connection:
        return [e["kind"] for e in await list_events(connection) if e["kind"].startswith(prefix)]


async def test_away_by_mail_tells_the_partner_and_pauses_nudges(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        code, text = await to_away(relay, OAK[0], "until 2026-06-10")
        assert code == 250, text
        received = await wait_for_notices(sink, 2)
        by_rcpt = {r.rcpt_tos[0]: r.message for r in received}
        assert str(by_rcpt[MAPLE[0]]["Subject"]) == "Oak is away until 10 June 2026"
        assert "Your mentor Oak is away for a while (travelling, or busy) and will write again after 10 June 2026" \
            in words(by_rcpt[MAPLE[0]])
        assert str(by_rcpt[OAK[0]]["Subject"]) == "Away: until 10 June 2026"
        assert "Maple knows that you will write again" in words(by_rcpt[OAK[0]])
        assert await kinds(relay, "away") == ["away.set"]

        clock._now = datetime(2026, 6, 5, 14, 0, tzinfo=UTC)
        await write(relay, pair, "mentee", "A question while you travel")
        out_of_office = simple_message(OAK[0], pair.mentee.alias_address(DOMAIN), "Out of Office: question",
                                       "I am travelling.", Auto_Submitted="auto-replied")
        port = relay.settings.relay.smtp.port
        code, text = await send(port, out_of_office, OAK[0], pair.mentee.alias_address(DOMAIN))
        assert code == 250, text
        while clock.now() < datetime(2026, 6, 10, 22, 0, tzinfo=UTC):  # 11 June begins in Berlin at 22:00 UTC
            assert (await sweep.run(relay.settings, relay.engine, clock)).sent == []
            clock.advance(timedelta(hours=1))
        assert await kinds(relay, "away_notice") == []  # the auto-reply was not announced: Maple knows
        # The announced holiday is not neglect: Maple's question waits from Oak's return (11 June, 00:00 in
        # Berlin), the reminders and the coordinator's notice as if it had reached Oak then.
        sent: list[tuple[datetime, str]] = []
        while clock.now() < datetime(2026, 6, 18, 6, 0, tzinfo=UTC):
            sent += [(clock.now(), p.kind) for p in (await sweep.run(relay.settings, relay.engine, clock)).sent]
            clock.advance(timedelta(hours=1))
        assert sent == [  # each due at midnight in Berlin, sent at 08:00 there; the coordinator's at 18:00 in New York
            (datetime(2026, 6, 13, 6, 0, tzinfo=UTC), "nudge.first"),
            (datetime(2026, 6, 15, 6, 0, tzinfo=UTC), "nudge.second"),
            (datetime(2026, 6, 17, 22, 0, tzinfo=UTC), "nudge.escalation"),
        ]
        relay.worker.wake()
        reminder = next(r.message for r in await wait_for_notices(sink, 5)
                        if str(r.message["Subject"]) == "Maple is waiting for your answer")
        assert '"A question while you travel", sent Friday, 5 June 2026, 16:00 (Europe/Berlin), 7 days ago' \
            in words(reminder)


async def test_back_early_by_mail_counts_the_wait_from_the_return(layout: Layout, sink: Sink) -> None:
    """Oak, away until 20 June, writes "back" on 8 June: Maple's question of 3 June waits from that day,
    the first reminder two days later (not the second one at once, and the coordinator three days on)."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        assert (await to_away(relay, OAK[0], "until 2026-06-20"))[0] == 250
        clock._now = datetime(2026, 6, 3, 14, 0, tzinfo=UTC)
        await write(relay, pair, "mentee", "A question while you travel")
        clock._now = datetime(2026, 6, 8, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
        assert (await to_away(relay, OAK[0], "back"))[0] == 250
        sent: list[tuple[datetime, str]] = []
        while clock.now() < datetime(2026, 6, 11, 10, 0, tzinfo=UTC):
            sent += [(clock.now(), p.kind) for p in (await sweep.run(relay.settings, relay.engine, clock)).sent]
            clock.advance(timedelta(hours=1))
        # back on 8 June: the wait counts from its beginning in Berlin; the first reminder is due at midnight
        # there on 10 June, and sent at 08:00
        assert sent == [(datetime(2026, 6, 10, 6, 0, tzinfo=UTC), "nudge.first")]


async def test_back_by_mail_and_unreadable_requests(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        assert (await to_away(relay, OAK[0], "until 2026-06-20"))[0] == 250
        assert (await to_away(relay, OAK[0], "Back"))[0] == 250
        assert (await to_away(relay, OAK[0], "see you soon"))[0] == 250
        assert (await to_away(relay, OAK[0], "until 2026-05-01"))[0] == 250
        received = await wait_for_notices(sink, 6)
        subjects = sorted((r.rcpt_tos[0], str(r.message["Subject"])) for r in received)
        assert subjects == sorted([
            (MAPLE[0], "Oak is away until 20 June 2026"), (OAK[0], "Away: until 20 June 2026"),
            (MAPLE[0], "Oak is back"), (OAK[0], "Away: you are back"),
            (OAK[0], 'Away: the subject should be "until YYYY-MM-DD" (for example "until 2026-12-03") or "back"'),
            (OAK[0], "Away: 2026-05-01 has already passed"),
        ])
        assert await kinds(relay, "away") == ["away.set", "away.cleared", "away.unclear", "away.unclear"]
        assert len(notices_in(sink)) == 6


async def test_only_participants_may_write_to_away(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        code, text = await to_away(relay, "stranger@elsewhere.example", "until 2026-06-10")
        assert code == 550 and "Only participants" in text
        code, text = await to_away(relay, OAK[0], "until 2026-06-10", header_from="someone@elsewhere.example")
        assert code == 550 and "Only participants" in text
        async with relay.engine.connect() as connection:
            refused = await list_events(connection, kind="refused")
        assert [e["detail"]["reason"] for e in refused] == ["stranger", "stranger"]
        assert await kinds(relay, "away") == []


async def test_away_by_cli(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    result = await acli(layout, "pair", "away", str(pair["id"]), "--role", "mentee", "--until", "2099-01-31", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"id": pair["id"], "role": "mentee", "away_until": "2099-01-31"}
    received = await wait_for_notices(sink, 2)
    by_rcpt = {r.rcpt_tos[0]: str(r.message["Subject"]) for r in received}
    assert by_rcpt == {MENTOR["email"]: "Maple is away until 31 January 2099",
                       MENTEE["email"]: "Away: until 31 January 2099"}
    back = await acli(layout, "pair", "away", str(pair["id"]), "--role", "mentee", "--back")
    assert back.returncode == 0 and back.stdout.strip() == f"pair {pair['id']}: the mentee is back"
    await wait_for_notices(sink, 4)
    past = await acli(layout, "pair", "away", str(pair["id"]), "--role", "mentee", "--until", "2020-01-01")
    assert past.returncode == 2 and past.stderr.strip() == "error: 2020-01-01 has already passed"
    bad = await acli(layout, "pair", "away", str(pair["id"]), "--role", "mentee", "--until", "soon")
    assert bad.returncode == 2 and "expected a date such as 2026-12-03" in bad.stderr
    missing = await acli(layout, "pair", "away", "999", "--role", "mentee", "--back")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no pair with id 999"
    events = json.loads((await acli(layout, "events", "list", "--json")).stdout)
    assert [(e["kind"], e["actor"].split(":")[0]) for e in events if e["kind"].startswith("away")] == [
        ("away.set", "cli"), ("away.cleared", "cli")]


async def test_a_group_mentees_away_notice_is_in_their_language_and_youth_wording(layout: Layout, sink: Sink) -> None:
    """In a youth program, a Spanish-reading mentee of a group reads the away notice as a pair's mentee does:
    Content-Language es and the simpler youth wording (it had no Content-Language and the adult wording)."""
    from relay.enrol import Person
    from relay.groups import add_member, create_group
    from tests.nudging import write_program

    write_program(layout, audience="youth")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, ("fern.student@mail.example.org", "Lena Svensson", "Fern", None, (), "es"))
        group = await create_group(relay.settings, relay.engine, clock, program_id="stem", name="Robotics")
        for role, person in (("mentor", Person(*OAK)),
                             ("mentee", Person("birch.student@mail.example.org", "Ravi Patel", "Birch",
                                               language="es"))):
            await add_member(relay.settings, relay.engine, clock, group.id, role=role, person=person)
        code, reply = await to_away(relay, OAK[0], "until 2026-06-20")
        assert code == 250, reply
        # both mentees told, Oak's two confirmations (no welcome: the program sends none)
        told = {r.rcpt_tos[0]: r.message for r in await wait_for_notices(sink, 4)
                if "no está hasta" in str(r.message["Subject"])}
    pair_mentee, group_mentee = told["fern.student@mail.example.org"], told["birch.student@mail.example.org"]
    for message in (pair_mentee, group_mentee):
        assert message["Content-Language"] == "es"
        assert str(message["Subject"]) == "Oak no está hasta el 20 de junio de 2026"
        assert words(message).startswith("Tu mentor Oak no está por un tiempo")  # youth wording
        assert "Puedes seguir escribiendo. Tus mensajes le esperan." in words(message)
