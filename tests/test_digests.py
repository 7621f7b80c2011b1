"""Digests end to end through real SMTP on an injected clock: members of a community choose each, daily
or weekly at digest@ (confirmed; an unclear subject gets a helpful reply); a daily digest arrives once,
the morning after, outside the member's quiet hours, with the right messages as a MIME digest (contents
first, then each anonymised copy as message/rfc822) — once even with two sweeps on two engines at once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select

from relay.clock import FixedClock
from relay.config import load_settings
from relay.digests import sweep
from relay.store.database import create_engine
from relay.store.schema import events, outbound
from tests.nudging import enrol, running, write_program
from tests.support import DOMAIN, Layout, Received, Sink, acli, eventually, nothing_queued, rows, send, simple_message

OAK = ("jose.muller@uni.example.net", "José Müller", "Oak", None)
ELM = ("amara.okafor@firm.example.com", "Amara Okafor", "Elm", None)
PINE = ("li.wei@lab.example.org", "Li Wei", "Pine", None)
ASH = ("tom.baker@arts.example.co.uk", "Tom Baker", "Ash", "Europe/London")  # daily by the program's default
MAPLE = ("jane.doe@mail.example.org", "Jane Doe", "Maple", None)
BIRCH = ("ravi.patel@school.example.com", "Ravi Patel", "Birch", None)
CEDAR = ("lena.svensson@post.example.se", "Lena Svensson", "Cedar", None)
WILLOW = ("kenji@mail.example.jp", "Kenji Sato", "Willow", None)
PEOPLE = (OAK, ELM, PINE, ASH, MAPLE, BIRCH, CEDAR, WILLOW)
MENTORS, DIGEST = f"mentors@{DOMAIN}", f"digest@{DOMAIN}"
T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # Monday: 10:00 in New York (the program's zone), 15:00 in London


def at(days: int, hours: float) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


async def mail(port: int, person: tuple[str, str, str, str | None], rcpt: str, subject: str, body: str) -> None:
    code, text = await send(port, simple_message(f"{person[1]} <{person[0]}>", rcpt, subject, body), person[0], rcpt)
    assert code == 250, text


def assert_no_identity(message: EmailMessage, reader: tuple[str, str, str, str | None]) -> None:
    """No address or name part of anybody but the reader, in the raw text nor in any decoded text part."""
    texts = [message.as_string()] + [str(part.get_content()) for part in message.walk()
                                     if part.get_content_maintype() == "text"]
    for text in texts:
        for email_address, name, _, _ in [p for p in PEOPLE if p is not reader]:
            assert email_address not in text
            for word in name.split():
                assert len(word) < 3 or word not in text, word


def parts_of(digest: EmailMessage) -> tuple[str, list[EmailMessage]]:
    """(table of contents, the attached messages) of a MIME digest."""
    assert digest.get_content_type() == "multipart/mixed"
    contents, inner = list(digest.iter_parts())
    assert contents.get_content_type() == "text/plain"
    assert inner.get_content_type() == "multipart/digest"
    attached = []
    for part in inner.iter_parts():
        assert part.get_content_type() == "message/rfc822"
        (message,) = part.iter_parts()
        attached.append(message)
    return contents.get_content(), attached  # type: ignore[return-value]


def to(sink: Sink, person: tuple[str, str, str, str | None], start: int = 0) -> list[Received]:
    return [r for r in sink.received[start:] if r.rcpt_tos == [person[0]]]


async def test_digest_choices_and_a_daily_digest_once(layout: Layout, sink: Sink) -> None:
    write_program(layout, community={"mentors": True, "mentees": True, "digest": "daily"})
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    second_instance = create_engine(settings.database_url)
    async with running(layout, clock) as relay:
        port = layout.smtp_port
        for mentor, mentee in ((OAK, MAPLE), (ELM, BIRCH), (PINE, CEDAR), (ASH, WILLOW)):
            await enrol(relay, clock, mentor, mentee)

        # Choices at digest@: Pine every message, Elm weekly; Maple's subject is unclear.
        await mail(port, PINE, DIGEST, "each", "")
        await mail(port, ELM, DIGEST, "Re: Weekly please", "")
        await mail(port, MAPLE, DIGEST, "sometimes", "")
        notes = {r.rcpt_tos[0]: r.message for r in await sink.wait_for(3)}
        assert notes[PINE[0]]["Subject"] == "Digest: every message as it comes"
        assert "every message of STEM mentoring mentors as it comes" in notes[PINE[0]].get_content()
        assert notes[ELM[0]]["Subject"] == "Digest: one a week"
        assert notes[MAPLE[0]]["Subject"] == "Digest: how to choose"
        unclear = notes[MAPLE[0]].get_content()
        assert '"sometimes"' in unclear and '"daily"' in unclear and f"digest@{DOMAIN}" in unclear
        chosen = await rows(layout, select(events.c.kind).where(events.c.kind.like("digest.%")))
        assert sorted(e.kind for e in chosen) == ["digest.chosen", "digest.chosen", "digest.unclear"]

        # Monday: Oak writes twice to the mentors. Pine gets each at once; Elm and Ash nothing yet.
        clock._now = at(0, 1)
        await mail(port, OAK, MENTORS, "First steps", "Hello all, José here.")
        clock._now = at(0, 2)
        await mail(port, OAK, MENTORS, "Second thoughts", "Another idea.")
        await sink.wait_for(5)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absences
        assert [r.message["Subject"] for r in to(sink, PINE, 3)] == ["First steps", "Second thoughts"]
        assert to(sink, ASH) == [] and to(sink, ELM, 3) == []

        # The same day: nothing due (a daily digest holds whole days).
        assert (await sweep.run(settings, relay.engine, clock)).sent == []
        # Tuesday 05:00 in London: quiet hours for Ash: later.
        clock._now = datetime(2026, 6, 2, 4, 0, tzinfo=UTC)
        quiet = await sweep.run(settings, relay.engine, clock)
        assert quiet.sent == [] and [d["member"] for d in quiet.deferred]
        # Tuesday 09:00 in London: two sweeps at once on two engines: one digest.
        clock._now = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
        results = await asyncio.gather(sweep.run(settings, relay.engine, clock),
                                       sweep.run(settings, second_instance, clock))
        assert sum(len(r.sent) for r in results) == 1
        relay.worker.wake()
        await sink.wait_for(6)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # a second digest would be out by now
        (digest,) = to(sink, ASH)
        assert digest.message["Subject"] == "Daily digest: STEM mentoring mentors"
        assert_no_identity(digest.message, ASH)
        contents, attached = parts_of(digest.message)
        assert "Messages: 2" in contents
        assert "1. Oak (STEM mentoring mentors): First steps" in contents
        assert "2. Oak (STEM mentoring mentors): Second thoughts" in contents
        assert [m["Subject"] for m in attached] == ["First steps", "Second thoughts"]
        assert "Hello all, Oak here." in attached[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert attached[0]["From"].addresses[0].display_name == "Oak (STEM mentoring mentors)"

        # Later sweeps that day send nothing again; Tuesday's message waits for Wednesday's digest.
        clock._now = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
        await mail(port, OAK, MENTORS, "Third", "One more.")
        await sink.wait_for(7)  # Pine's copy
        assert (await sweep.run(settings, relay.engine, clock)).sent == []
        # Wednesday's sweep through the command line (`nudges run --now` runs the digest sweep too); the
        # digest is due for delivery at once (the real time), so the relay's clock is moved there to send it.
        ran = await acli(layout, "nudges", "run", "--now", "2026-06-03T09:00:00+00:00", "--json")
        assert ran.returncode == 0, ran.stderr
        wednesday = json.loads(ran.stdout)["digests"]
        assert [(d["mode"], d["messages"]) for d in wednesday["sent"]] == [("daily", 1)]
        clock._now = datetime.now(UTC) + timedelta(minutes=1)
        relay.worker.wake()
        await sink.wait_for(8)
        _, attached = parts_of(to(sink, ASH)[1].message)
        assert [m["Subject"] for m in attached] == ["Third"]

        # Elm (weekly) gets the week's three on the next Monday morning in New York, once.
        clock._now = datetime(2026, 6, 8, 13, 0, tzinfo=UTC)
        monday = await sweep.run(settings, relay.engine, clock)
        assert [d["messages"] for d in monday.sent] == [3] and monday.sent[0]["mode"] == "weekly"
        relay.worker.wake()
        await sink.wait_for(9)
        (weekly,) = to(sink, ELM, 3)
        assert weekly.message["Subject"] == "Weekly digest: STEM mentoring mentors"
        assert [m["Subject"] for m in parts_of(weekly.message)[1]] == ["First steps", "Second thoughts", "Third"]
        clock._now += timedelta(hours=3)
        assert (await sweep.run(settings, relay.engine, clock)).sent == []
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting (not a nap)
        assert len(sink.received) == 9
        states = await rows(layout, select(outbound.c.state).where(outbound.c.state.in_(("digest", "digested"))))
        assert sorted(s.state for s in states) == ["digested"] * 6
    await second_instance.dispose()
