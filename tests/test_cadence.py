"""Mentor cadence: on the mentor's writing days (their time zone, after the quiet hours) one digest of
what waits for them; nothing on other days or when nothing waits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.store.events import list_events
from tests.nudging import enrol, running, wait_for_notices, words, write
from tests.support import MENTEE, MENTOR, Layout, Sink, cli

OAK = ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", "Europe/Berlin")
MAPLE = ("maple.student@mail.example.org", "Jane Doe", "Maple", None)


def hour_of(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_a_digest_on_each_writing_day_when_something_waits(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(hour_of("2026-06-02T10:00"))  # a Tuesday
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE, mentor_cadence="Mon, Thu")
        script = {hour_of("2026-06-02T10:00"): ("mentee", "First question"),
                  hour_of("2026-06-03T10:00"): ("mentee", "Second question"),
                  hour_of("2026-06-04T12:00"): ("mentor", "Re: both questions"),
                  hour_of("2026-06-06T10:00"): ("mentee", "Weekend news")}
        while clock.now() <= hour_of("2026-06-09T23:00"):
            if clock.now() in script:
                role, subject = script[clock.now()]
                await write(relay, pair, role, subject)
            await relay.sweep_nudges()
            clock.advance(timedelta(hours=1))
        async with relay.engine.connect() as connection:
            digests = [(e["at"], e["detail"]["waiting"]) for e in await list_events(connection, kind="nudge.digest")]
        # Thursday and Monday begin in Berlin at 22:00 UTC; the quiet hours there end at 06:00 UTC
        assert digests == [(hour_of("2026-06-04T06:00"), 2), (hour_of("2026-06-08T06:00"), 1)]
        received = await wait_for_notices(sink, 4)  # the two digests and two first nudges
        thursday = next(r.message for r in received if str(r.message["Subject"]) == "2 messages from Maple are waiting")
        text = words(thursday)
        assert '"First question", sent Tuesday, 2 June 2026, 12:00 (Europe/Berlin)' in text
        assert '"Second question", sent Wednesday, 3 June 2026, 12:00 (Europe/Berlin)' in text
        assert [str(r.message["Subject"]) for r in received].count("1 message from Maple is waiting") == 1


def test_pair_create_checks_the_cadence(layout: Layout) -> None:
    common = ["pair", "create", "--program", "stem", "--mentor-email", MENTOR["email"], "--mentor-name",
              MENTOR["name"], "--mentor-handle", MENTOR["handle"], "--mentee-email", MENTEE["email"],
              "--mentee-name", MENTEE["name"], "--mentee-handle", MENTEE["handle"]]
    bad = cli(layout, *common, "--mentor-cadence", "funday")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("error: --mentor-cadence: expected days such as mon,thu "
                                  "(from mon, tue, wed, thu, fri, sat, sun), got 'funday'")
    good = cli(layout, *common, "--mentor-cadence", "thursday,mon", "--json")
    assert good.returncode == 0, good.stderr
    shown = json.loads(cli(layout, "pair", "show", str(json.loads(good.stdout)["id"]), "--json").stdout)
    assert shown["mentor"]["cadence"] == "mon,thu" and shown["mentee"]["cadence"] is None
