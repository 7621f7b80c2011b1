"""Program report: figures on a scripted program (real relay, injected clock) match hand-computed values."""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import literal, select

from relay import ids
from relay.clock import FixedClock
from relay.config import load_settings
from relay.endings import close_pair
from relay.enrol import Person, create_pair
from relay.holdqueue import actions as review
from relay.reports.figures import program_figures
from relay.service import Relay
from relay.store import events
from relay.store.database import create_engine, migrate, transaction
from relay.store.messages import Accepted, HoldEntry, store_accepted_many
from relay.store.pairs import insert_pair
from relay.store.reporting import EPOCH, epoch_us, epoch_week, to_us, week_start
from relay.store.schema import UTCDateTime, held, members
from tests.archive_support import HOLD_MEETINGS, START
from tests.support import DOMAIN, Layout, Sink, acli, acli_json, send, simple_message, store_url

PEOPLE = {
    "a": (Person("olive@uni.example", "Olive Smith", "Oak"), Person("mary@mail.example", "Mary Jones", "Maple")),
    "b": (Person("pat@uni.example", "Pat Brown", "Pine"), Person("bea@mail.example", "Bea Green", "Birch")),
    "c": (Person("ed@uni.example", "Ed White", "Elm"), Person("al@mail.example", "Al Black", "Ash")),
}
NOW = START + timedelta(days=8)


async def script(layout: Layout, sink: Sink) -> None:
    """Three pairs over eight days; times in hours after START (a Monday, ISO week 10 of 2026)."""
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(HOLD_MEETINGS))
    clock = FixedClock(START)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    pairs: dict[str, Any] = {}

    def at(hours: float) -> None:
        clock.advance(START + timedelta(hours=hours) - clock.now())

    async def write(name: str, role: str, subject: str, body: str = "Some words.") -> str:
        pair = pairs[name]
        person, partner = (pair.mentor, pair.mentee) if role == "mentor" else (pair.mentee, pair.mentor)
        alias = partner.alias_address(DOMAIN)
        code, reply = await send(layout.smtp_port, simple_message(person.email, alias, subject, body),
                                 person.email, alias)
        assert code == 250, reply
        return reply.rsplit(" ", 1)[-1]

    async def record(kind: str, name: str, **detail: Any) -> None:
        async with transaction(relay.engine) as connection:
            await events.record(connection, kind, clock.now(), pair_id=pairs[name].id, **detail)

    try:
        for name, (mentor, mentee) in PEOPLE.items():
            pairs[name] = await create_pair(relay.settings, relay.engine, clock, program_id="stem",
                                            mentor=mentor, mentee=mentee)
        await write("a", "mentee", "Hello")
        at(1)
        await write("b", "mentor", "Welcome")
        at(2)
        await write("c", "mentee", "Hi")
        at(5)
        await close_pair(relay.settings, relay.engine, clock, pairs["c"].id)
        at(10)
        await write("a", "mentor", "Re: Hello")  # answers the first mentee message after 10 h
        at(11)
        held_first = await write("a", "mentee", "Coffee", "Could we meet up?")
        at(12)
        await write("a", "mentee", "Another question")
        at(13)
        await review.release(relay.settings, relay.engine, clock, held_first, "mod")  # reviewed in 2 h
        at(40)
        await record("nudge.first", "a")  # followed by the mentor's reply 30 h later
        at(70)
        await write("a", "mentor", "Re: Coffee")  # answers after 59 h and 58 h
        at(71)
        held_second = await write("a", "mentee", "Coffee again", "Let us meet up.")
        at(72)
        await write("a", "mentee", "Thanks")  # never answered
        at(76)
        await review.reject(relay.settings, relay.engine, clock, held_second, "mod", "no meetings")  # in 5 h
        at(100)
        await record("nudge.second", "b")  # never followed
        at(101)
        code, _ = await send(layout.smtp_port, simple_message("x@stranger.example", "b", "hi", "hey"),
                             "x@stranger.example", pairs["b"].mentee.alias_address(DOMAIN))
        assert code == 550
        at(102)
        await record("refused", "a", reason="spoofing")  # as the sender-authentication check records it
        at(150)
        await record("nudge.escalation", "b")
    finally:
        await relay.stop()


EXPECTED_WEEKS = [
    {"week": "2026-W10", "pairs_open": 3, "messages": 9, "per_pair": 3.0, "by_pair": {"1": 7, "2": 1, "3": 1}},
    {"week": "2026-W11", "pairs_open": 2, "messages": 0, "per_pair": 0.0, "by_pair": {"1": 0, "2": 0}},
]


async def test_report_figures_match_the_hand_computed_values(layout: Layout, sink: Sink) -> None:
    await script(layout, sink)
    result = await acli(layout, "report", "--program", "stem", "--json", "--now", NOW.isoformat())
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["pairs"] == {"total": 3, "active": 1, "silent": 1, "paused": 0, "ended": 0, "closed": 1}
    assert figures["messages"] == {"total": 9, "weeks": EXPECTED_WEEKS}
    # mentee messages that reached the mentor: 4 in pair a (the rejected one did not) and 1 in pair c;
    # answered after 10, 59 and 58 hours; one within 48 h of the five whose 48 hours are over
    assert figures["reply_time"] == {"mentee_messages": 5, "answered": 3, "median_hours": 58.0, "p90_hours": 58.8,
                                     "answered_within_48h": 1, "share_within_48h": 0.2}
    assert figures["nudges"] == {"sent": 2, "escalations": 1, "by_kind": {"nudge.escalation": 1, "nudge.first": 1,
                                                                         "nudge.second": 1},
                                 "followed_by_reply_within_48h": 1, "share_followed_within_48h": 0.5}
    # reviews took 2 h and 5 h: median 3.5, p90 2 + 0.9 * 3
    assert figures["moderation"] == {"held": 2, "waiting": 0, "released": 1, "rejected": 1, "urgent": 0,
                                     "review_time": {"median_hours": 3.5, "p90_hours": 4.7},
                                     "rejected_automatically": 0}
    assert figures["attempts"] == {"stranger": 1, "spoofing": 1, "unverified": 0}

    table = list(csv.DictReader(io.StringIO((await acli(layout, "report", "--program", "stem", "--csv", "--now",
                                                        NOW.isoformat())).stdout)))
    values = {(row["section"], row["figure"]): row["value"] for row in table}
    assert values[("pairs", "silent")] == "1" and values[("reply_time", "p90_hours")] == "58.8"
    assert values[("messages", "2026-W10.pair_1")] == "7"
    assert {figure: value for (section, figure), value in values.items() if ".pair_" in figure} == {
        f"{week['week']}.pair_{pair}": str(count) for week in EXPECTED_WEEKS for pair, count in week["by_pair"].items()}
    assert {row["program"] for row in table} == {"stem"}

    text = await acli(layout, "report", "--program", "stem", "--now", NOW.isoformat())
    assert "pairs: 3 (1 active, 1 silent, 0 paused, 0 ended, 1 closed)" in text.stdout
    assert "within 48 h: 20%" in text.stdout


async def test_report_on_an_empty_program_and_bad_arguments(layout: Layout) -> None:
    empty = await acli_json(layout, "report", "--program", "stem", "--json")
    assert empty["pairs"] == {"total": 0, "active": 0, "silent": 0, "paused": 0, "ended": 0, "closed": 0}
    assert empty["reply_time"]["median_hours"] is None and empty["reply_time"]["share_within_48h"] is None
    unknown = await acli(layout, "report", "--program", "nope")
    assert unknown.returncode == 1 and "unknown program 'nope' (known: stem)" in unknown.stderr
    bad = await acli(layout, "report", "--program", "stem", "--now", "yesterday")
    assert bad.returncode == 2 and "error: argument --now: expected a time such as" in bad.stderr


async def test_the_reports_clock_is_exact_to_the_microsecond(layout: Layout) -> None:
    """The report's times are computed in the database (relay/store/reporting.py): to the microsecond, and a
    message written at 23:59:59.9999 on a Sunday counts in that week, not the next (SQLite's own date
    functions round fractions to milliseconds)."""
    engine = create_engine(store_url(layout))
    sunday = datetime(2026, 3, 8, 23, 59, 59, 999_900, tzinfo=UTC)
    times = [sunday, sunday + timedelta(microseconds=100), datetime(2026, 3, 9, 0, 0, tzinfo=UTC),
             datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2026, 6, 30, 12, 0, 0, 1, tzinfo=UTC)]
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            for when in times:
                value = literal(when, UTCDateTime())
                us, week = (await connection.execute(select(epoch_us(value), epoch_week(value)))).one()
                assert us == to_us(when) == (when - EPOCH) // timedelta(microseconds=1)
                assert week_start(week) == when.date() - timedelta(days=when.weekday()), when
    finally:
        await engine.dispose()


async def test_reply_times_and_weekly_counts_follow_their_definitions_on_ties_rejections_and_holds(
        layout: Layout) -> None:
    """The report reads each pair's messages once, in arrival order, and answers the waiting mentee
    messages as the mentor's messages come (relay/reports/figures.py). Against the definitions computed
    the plain way, message by message: several messages at the same instant (the id decides), automatic
    replies (never counted), rejections at intake and held mail (still waiting, released, rejected by a
    moderator) as mentee messages and as the mentor's answer, and a clock that puts some answers after it."""
    rng = random.Random(14)
    engine = create_engine(store_url(layout))
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    written: list[dict[str, Any]] = []
    try:
        await migrate(engine)
        async with transaction(engine) as connection:
            for k in range(30):
                people = {role: {"email": f"{role}{k}@ex.example", "name": f"{role.title()} {k}",
                                 "handle": f"{role.title()}{k}", "alias": f"{role}-{k}"}
                          for role in ("mentor", "mentee")}
                pair_id = await insert_pair(connection, program_id="stem", policy=None, end_date=None,
                                            created_at=base - timedelta(days=3), people=people)
                found = (await connection.execute(select(members.c.id, members.c.role)
                                                  .where(members.c.pair_id == pair_id))).all()
                roles = {role: member_id for member_id, role in found}
                items = []
                for n in range(rng.randrange(0, 25)):
                    role = rng.choice(["mentor", "mentee"])
                    decision = rng.choice(["deliver"] * 5 + ["hold", "reject", "autoreply"])
                    when = base + timedelta(hours=rng.choice([0, 1, 30, 47, 48, 49, 100, 200]) + 24 * (n // 3),
                                            microseconds=rng.choice([0, 0, 1, 500_000]))
                    sender, recipient = roles[role], roles["mentee" if role == "mentor" else "mentor"]
                    item = Accepted(
                        id=ids.queue_id(), pair_id=pair_id, sender_id=sender, sender_role=role,
                        recipient_id=recipient, envelope_from=f"{role}{k}@ex.example", remote_addr=None,
                        original_message_id=None, body_hash=f"{k}-{n}", subject="s", raw=b"Subject: s\r\n\r\nx",
                        decision=decision, reasons=[], received_at=when, outbound=None,
                        duplicate_window=timedelta(days=1), domain=DOMAIN,
                        hold=HoldEntry(program_id="stem", policy="p", reasons=[], release_requires=1,
                                       notified=True) if decision == "hold" else None)
                    items.append(item)
                    written.append({"id": item.id, "pair": pair_id, "role": role, "decision": decision,
                                    "at": when, "state": rng.choice(["held", "released", "rejected"])
                                    if decision == "hold" else None})
                await store_accepted_many(connection, items)
            for message in written:
                if message["state"] is not None:
                    await connection.execute(held.update().where(held.c.message_id == message["id"])
                                             .values(state=message["state"]))
        now = base + timedelta(days=10)
        figures = await program_figures(engine, FixedClock(now), "stem")
    finally:
        await engine.dispose()

    counted = [m for m in written if m["decision"] != "autoreply"]
    counted.sort(key=lambda m: (m["pair"], m["at"], m["id"]))
    waits: list[timedelta | None] = []
    due = within = 0
    for index, message in enumerate(counted):
        if (message["role"] != "mentee" or message["decision"] == "reject"
                or message["state"] in ("held", "rejected")):
            continue
        reply = next((m["at"] for m in counted[index + 1:] if m["pair"] == message["pair"]
                      and m["role"] == "mentor"), None)
        waited = None if reply is None else reply - message["at"]
        in_time = waited is not None and waited <= timedelta(hours=48)
        waits.append(waited)
        within += in_time
        due += in_time or now - message["at"] >= timedelta(hours=48)
    answered = sorted(w.total_seconds() / 3600 for w in waits if w is not None)
    ties = Counter((m["pair"], m["at"]) for m in counted)
    assert len(waits) > 50 and 10 < len(answered) < len(waits) and max(ties.values()) > 1
    assert any(m["at"] > now for m in counted) and any(m["state"] == "released" for m in counted)
    assert figures["reply_time"] == {
        "mentee_messages": len(waits), "answered": len(answered),
        "median_hours": round(statistics.median(answered), 2),
        "p90_hours": round(statistics.quantiles(answered, n=10, method="inclusive")[-1], 2),
        "answered_within_48h": within, "share_within_48h": round(within / due, 4)}
    by_week: dict[str, Counter[str]] = {}
    for message in counted:
        year, week, _ = message["at"].isocalendar()
        by_week.setdefault(f"{year}-W{week:02d}", Counter())[str(message["pair"])] += 1
    weeks = {week["week"]: {pair: count for pair, count in week["by_pair"].items() if count}
             for week in figures["messages"]["weeks"]}
    listed = {week: counts for week, counts in by_week.items() if week in weeks}  # the weeks up to now's
    assert len(listed) == 2 and {week: counts for week, counts in weeks.items() if counts} == listed
    assert figures["messages"]["total"] == len(counted)
    assert figures["moderation"]["rejected_automatically"] == sum(m["decision"] == "reject" for m in counted)
