"""Nudges: a simulated 30-day program on an injected clock, through a real relay, SQLite and SMTP sink.

The exact set of nudges, escalations and check-ins is asserted (none missing, none duplicated), with a
restart of the relay mid-way and two sweeps (on two engines, like two relay instances) at every step;
quiet hours and time zones decide when mail goes out; `nudges run` from the command line.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from relay.archive.person import erase_person
from relay.clock import FixedClock
from relay.config import load_settings
from relay.holdqueue.actions import release
from relay.nudges import due, sweep
from relay.service import Relay
from relay.store.database import create_engine
from relay.store.events import list_events
from relay.store.outbound import list_outbound
from relay.store.pairs import Pair
from relay.store.schema import outbound
from relay.yamlsource import ConfigError
from tests.nudging import enrol, running, wait_for_notices, words, write, write_program
from tests.support import DOMAIN, Layout, Sink, acli, acli_json, cli, send, simple_message

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # a Monday; 10:00 in New York, 16:00 in Berlin, 23:00 in Tokyo

OAK = ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", "Europe/Berlin")
MAPLE = ("maple.student@mail.example.org", "Jane Doe", "Maple", None)  # the program's zone: New York
BIRCH = ("grace.h@navy.example.com", "Grace Hopper", "Birch", None)
WILLOW = ("kenji@mail.example.jp", "Kenji Sato", "Willow", "Asia/Tokyo")
REAL = [p[0] for p in (OAK, MAPLE, BIRCH, WILLOW)] + [w for p in (OAK, MAPLE, BIRCH, WILLOW) for w in p[1].split()]

CV_BODY = "I would love advice on internships at the space agency."


def hour(h: int) -> datetime:
    return T0 + timedelta(hours=h)


# 1442 sweeps on the injected clock: CPU-bound, so slow on a busy machine (and on PostgreSQL); it also goes
# first in a parallel run (tests/conftest.py orders tests that declare a longer timeout first).
@pytest.mark.timeout(400)
async def test_thirty_days_exact_nudges_with_restart_and_concurrent_sweeps(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    second_instance = create_engine(settings.database_url)
    context = running(layout, clock)
    relay = await context.__aenter__()
    try:
        a = await enrol(relay, clock, OAK, MAPLE)
        b = await enrol(relay, clock, BIRCH, WILLOW)
        script = {
            0: (a, "mentee", "Question about internships", CV_BODY),
            192: (a, "mentor", "Re: Question about internships", "Sorry for the delay! Let us talk."),
            204: (a, "mentee", "Follow-up on the CV", "Here is what I changed."),  # 22:00 in New York
            284: (a, "mentor", "Re: Follow-up on the CV", "Looks great."),
        }
        for h in range(0, 24 * 30 + 1):
            clock._now = hour(h)  # the injected clock, moved to each hour of the program
            if h == 400:  # the relay restarts mid-way: nothing sent before is sent again
                await context.__aexit__(None, None, None)
                context = running(layout, clock)
                relay = await context.__aenter__()
            if h in script:
                pair, role, subject, body = script[h]
                await write(relay, pair, role, subject, body)
            results = await asyncio.gather(sweep.run(settings, relay.engine, clock),
                                           sweep.run(settings, second_instance, clock))
            if any(r.sent for r in results):
                relay.worker.wake()
        async with relay.engine.connect() as connection:
            recorded = [e for e in await list_events(connection, limit=100_000) if e["kind"].startswith("nudge.")]
            queued = await list_outbound(connection)
        expected = sorted([
            ("nudge.first", a.id, "mentor", hour(48)),
            ("nudge.second", a.id, "mentor", hour(96)),
            ("nudge.escalation", a.id, "coordinator", hour(168)),
            ("nudge.first", a.id, "mentor", hour(256)),  # due at 04:00 in Berlin: sent at 08:00 there
            ("nudge.checkin", b.id, "mentor", hour(336)),
            ("nudge.checkin", b.id, "mentee", hour(345)),  # 23:00 in Tokyo when due: sent at 08:00 there
            ("nudge.checkin", a.id, "mentor", hour(620)),
            ("nudge.checkin", a.id, "mentee", hour(622)),  # 06:00 in New York when due
        ])
        assert sorted((e["kind"], e["pair_id"], e["detail"]["to_role"], e["at"]) for e in recorded) == expected
        received = await wait_for_notices(sink, len(expected))
        assert len(queued) == len(expected) + 4  # and the four relayed messages: nothing else was queued
        got = sorted((r.rcpt_tos[0], str(r.message["Subject"])) for r in received)
        assert got == sorted([
            (OAK[0], "Maple is waiting for your answer"),
            (OAK[0], "A reminder: Maple is still waiting for your answer"),
            ("coordinator@school.example", f"Pair {a.id}: Maple has waited 7 days for Oak"),
            (OAK[0], "Maple is waiting for your answer"),
            (BIRCH[0], "How are things with Willow?"),
            (WILLOW[0], "How are things with Birch?"),
            (MAPLE[0], "How are things with Oak?"),
            (OAK[0], "How are things with Maple?"),
        ])
        first = next(r.message for r in received if r.message["Subject"] == "Maple is waiting for your answer")
        text = first.get_content()
        assert '"Question about internships", sent Monday, 1 June 2026, 16:00 (Europe/Berlin)' in text
        assert "Explore engineering careers" in text and f"away@{DOMAIN}" in text
        assert CV_BODY not in text  # the subject and date of the waiting message, never its text
        escalation = next(r.message for r in received if r.rcpt_tos == ["coordinator@school.example"])
        assert "the mentee Maple has waited 7 days for an" in escalation.get_content()
        for mail in received:
            assert mail.message["Auto-Submitted"] == "auto-generated"
            body = mail.message.get_content()
            assert not [word for word in REAL if word in body or word in str(mail.message["Subject"])]
            assert mail.message["Date"].datetime in {e[3] for e in expected}
    finally:
        await context.__aexit__(None, None, None)
        await second_instance.dispose()


async def test_nudges_stop_when_the_mentor_writes(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", "First question")
        clock.advance(timedelta(hours=47))
        assert (await sweep.run(relay.settings, relay.engine, clock)).sent == []
        clock.advance(timedelta(hours=1))
        assert [p.kind for p in (await sweep.run(relay.settings, relay.engine, clock)).sent] == ["nudge.first"]
        await write(relay, pair, "mentor", "Re: First question")
        for _ in range(10):
            clock.advance(timedelta(days=1))
            result = await sweep.run(relay.settings, relay.engine, clock)
            assert [p.kind for p in result.sent if p.pair_id == pair.id and p.kind != "nudge.checkin"] == []


async def a_question_waits(relay: Relay, clock: FixedClock, waited: timedelta) -> tuple[Pair, sweep.SweepResult]:
    """Oak and Maple enrolled, Maple's question unanswered for `waited`, then one sweep."""
    pair = await enrol(relay, clock, OAK, MAPLE)
    await write(relay, pair, "mentee", "Question")
    clock.advance(waited)
    return pair, await sweep.run(relay.settings, relay.engine, clock)


async def test_the_reminder_quotes_a_long_non_english_subject_whole(layout: Layout, sink: Sink) -> None:
    """The waiting message's subject comes from the copy the mentor got, where a long non-ASCII subject is
    folded over lines with encoded words: the reminder quotes it decoded and whole."""
    subject = "Über die Prüfung: eine lange Frage zu Praktika, Bewerbungen und Stipendien im nächsten Sommer"
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", subject)
        await sink.handler.wait_until(lambda _: len(sink.received), 1, 20.0, "the relayed message")
        relayed = sink.received[0].raw
        assert re.search(rb"\nSubject: =\?utf-8\?q\?[^\r\n]*\r?\n [^\r\n]*=\?utf-8\?q\?", relayed)  # folded, encoded
        clock.advance(timedelta(hours=48))
        assert [p.kind for p in (await sweep.run(relay.settings, relay.engine, clock)).sent] == ["nudge.first"]
        relay.worker.wake()
        notices = await wait_for_notices(sink, 1)
        assert f'"{subject}", sent Monday, 1 June 2026' in " ".join(notices[0].message.get_content().split())


async def test_a_program_html_template_gives_its_notice_an_html_part(layout: Layout, sink: Sink) -> None:
    """We ship no HTML for the check-in; a program's folder may add one, and the notices it has none for stay
    plain text."""
    folder = layout.root / "our-templates"
    folder.mkdir()
    (folder / "checkin.html.j2").write_text("<p>How are things with <b>{{ partner_handle }}</b>?</p>\n")
    write_program(layout, templates="our-templates")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        _, result = await a_question_waits(relay, clock, timedelta(days=15))
        assert sorted(p.kind for p in result.sent) == ["nudge.checkin", "nudge.checkin", "nudge.escalation",
                                                        "nudge.second"]
        relay.worker.wake()
        notices = {str(r.message["Subject"]): r.message for r in await wait_for_notices(sink, 4)}
        html = notices["How are things with Maple?"].get_body(preferencelist=("html",))
        assert html is not None and "<b>Maple</b>" in html.get_content()
        reminder = notices["A reminder: Maple is still waiting for your answer"]
        assert not reminder.is_multipart() and reminder.get_content_type() == "text/plain"


async def test_a_late_sweep_sends_the_latest_stage_only(layout: Layout, sink: Sink) -> None:
    """After downtime past the second stage the mentor gets one reminder, not two at once."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair, result = await a_question_waits(relay, clock, timedelta(days=8))
        assert sorted(p.kind for p in result.sent) == ["nudge.escalation", "nudge.second"]
        assert result.sent[0].passed_over == [f"nudge.first:{pair.id}:{result.sent[0].message_id}"]
        clock.advance(timedelta(hours=1))
        assert (await sweep.run(relay.settings, relay.engine, clock)).sent == []


async def test_an_hourly_sweep_leaves_out_the_pairs_whose_mail_was_all_sent(layout: Layout, sink: Sink) -> None:
    """Once a pair's check-ins and its waiting mentee's reminders and escalation are all sent, the sweeps'
    query of due pairs leaves it out, so the hourly sweep does not plan it again; a pair with a check-in held
    back by quiet hours stays in until it is sent; and a new silence after the mentor writes brings the
    pair back, with check-ins for that silence."""
    clock = FixedClock(T0)

    async def due_now() -> list[int]:
        async with relay.engine.connect() as connection:
            return await due.pair_ids(connection, due.pairs_due(relay.settings, clock.now()))

    async with running(layout, clock) as relay:
        waiting = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, waiting, "mentee", "A question")
        night = await enrol(relay, clock, BIRCH, WILLOW)  # silent; Willow's check-in falls in Tokyo's night
        clock.advance(timedelta(days=20))
        first = await sweep.run(relay.settings, relay.engine, clock)
        assert sorted((p.pair_id, p.kind) for p in first.sent) == sorted(
            [(waiting.id, "nudge.checkin")] * 2 + [(waiting.id, "nudge.second"), (waiting.id, "nudge.escalation"),
                                                   (night.id, "nudge.checkin")])
        assert [(p.pair_id, p.to_handle) for p in first.deferred] == [(night.id, "Willow")]
        assert await due_now() == [night.id]
        clock.advance(timedelta(hours=10))  # 09:00 in Tokyo
        assert [(p.pair_id, p.to_handle) for p in (await sweep.run(relay.settings, relay.engine, clock)).sent] == [
            (night.id, "Willow")]
        assert await due_now() == []
        await write(relay, waiting, "mentor", "An answer")
        clock.advance(timedelta(days=15, hours=14))  # 14:00 UTC: day in Berlin and in New York
        assert await due_now() == [waiting.id]
        again = await sweep.run(relay.settings, relay.engine, clock)
        assert sorted((p.pair_id, p.to_role) for p in again.sent if p.kind == "nudge.checkin") == [
            (waiting.id, "mentee"), (waiting.id, "mentor")]
        assert await due_now() == []


ASH = ("ash.mentor@firm.example.com", "Ada Lovelace", "Ash", None)
ELM = ("elm.pupil@mail.example.org", "Alan Turing", "Elm", None)
CEDAR = ("cedar.mentor@firm.example.com", "Rosalind Franklin", "Cedar", None)
FERN = ("fern.pupil@mail.example.org", "Emmy Noether", "Fern", None)


async def test_the_due_pairs_are_those_whose_mentee_wrote_after_the_mentor_last_did(layout: Layout,
                                                                                     sink: Sink) -> None:
    """The sweeps' query finds a waiting mentee from the mentor's last message: a question asked again after
    an answer waits, as does one never answered; an answered one and a mentor's own message do not."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        answered, again, never, mentor_only = [await enrol(relay, clock, mentor, mentee) for mentor, mentee in (
            (OAK, MAPLE), (BIRCH, WILLOW), (ASH, ELM), (CEDAR, FERN))]
        for pair, roles in ((answered, ["mentee", "mentor"]), (again, ["mentee", "mentor", "mentee"]),
                            (never, ["mentee"]), (mentor_only, ["mentor"])):
            for number, role in enumerate(roles):
                await write(relay, pair, role, f"Note {number}")
                clock.advance(timedelta(minutes=10))
        clock.advance(timedelta(hours=49))  # past the first reminder's 48 hours; far from a silence's 14 days
        async with relay.engine.connect() as connection:
            assert await due.pair_ids(connection, due.pairs_due(relay.settings, clock.now())) == sorted(
                [again.id, never.id])
        sent = (await sweep.run(relay.settings, relay.engine, clock)).sent
        assert sorted((p.pair_id, p.kind, p.to_role) for p in sent) == sorted(
            [(again.id, "nudge.first", "mentor"), (never.id, "nudge.first", "mentor")])


async def three_waiting_too_long(relay: Relay, clock: FixedClock) -> list[Pair]:
    """Three pairs whose mentees each wrote (subject "Question <mentee>") 8 days ago, unanswered: each
    mentor is due a second reminder and the coordinator an escalation."""
    pairs = [await enrol(relay, clock, OAK, MAPLE), await enrol(relay, clock, BIRCH, WILLOW),
             await enrol(relay, clock, ASH, ELM)]
    for pair in pairs:
        await write(relay, pair, "mentee", f"Question {pair.mentee.handle}")
    clock.advance(timedelta(days=8))
    return pairs


async def test_a_coordinator_gets_one_mail_for_every_mentee_waiting_too_long(layout: Layout, sink: Sink) -> None:
    """Three mentees waiting past escalate_after: the coordinator gets one mail naming each pair, not three;
    each escalation is still its own event, sent once across two concurrent sweeps and a later one."""
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    second_instance = create_engine(settings.database_url)
    try:
        async with running(layout, clock) as relay:
            pairs = await three_waiting_too_long(relay, clock)
            results = await asyncio.gather(sweep.run(settings, relay.engine, clock),
                                           sweep.run(settings, second_instance, clock))
            # the sweeps' reports name each escalation by its own subject, though it went out in one mail
            lines = [line for result in results for line in result.lines() if "nudge.escalation" in line]
            assert sorted(lines) == sorted(
                f"sent nudge.escalation to coordinator (pair {p.id}): Pair {p.id}: {p.mentee.handle} has waited "
                f"8 days for {p.mentor.handle}" for p in pairs)
            clock.advance(timedelta(hours=1))
            assert [p for p in (await sweep.run(settings, relay.engine, clock)).sent
                    if p.kind == "nudge.escalation"] == []
            relay.worker.wake()
            async with relay.engine.connect() as connection:
                escalations = [e for e in await list_events(connection, limit=1000)
                               if e["kind"] == "nudge.escalation"]
            assert sorted(e["pair_id"] for e in escalations) == sorted(p.id for p in pairs)
            received = await wait_for_notices(sink, 3 + 1)  # each mentor's second reminder, one to the coordinator
            to_coordinator = [r.message for r in received if r.rcpt_tos == ["coordinator@school.example"]]
            assert len(to_coordinator) == 1
            digest = to_coordinator[0]
            assert str(digest["Subject"]) == "[STEM mentoring] 3 mentees have waited too long for an answer"
            text = words(digest)
            for pair in pairs:
                line = f"{pair.mentee.handle} has waited 8 days for {pair.mentor.handle} (pair {pair.id})"
                assert line in text
                assert f'"Question {pair.mentee.handle}", sent' in text
            assert not [word for word in [*REAL, "Ada", "Lovelace", "Turing", ASH[0], ELM[0]] if word in text]
    finally:
        await second_instance.dispose()


async def test_a_sweep_stopped_early_leaves_its_escalations_to_the_next_one(layout: Layout, sink: Sink) -> None:
    """The digest is written after the pages: a sweep told to stop before it claims none of the
    escalations (none is claimed and left untold); the next sweep tells the coordinator of all of them."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        await three_waiting_too_long(relay, clock)

        async def stop() -> bool:
            return False

        first = await sweep.run(relay.settings, relay.engine, clock, mails_per_commit=1, between=stop)
        assert [p.kind for p in first.sent] == ["nudge.second"]
        second = await sweep.run(relay.settings, relay.engine, clock)
        assert sorted(p.kind for p in second.sent) == ["nudge.escalation"] * 3 + ["nudge.second"] * 2
        relay.worker.wake()
        received = await wait_for_notices(sink, 3 + 1)
        subjects = [str(r.message["Subject"]) for r in received if r.rcpt_tos == ["coordinator@school.example"]]
        assert subjects == ["[STEM mentoring] 3 mentees have waited too long for an answer"]


async def test_a_long_list_of_escalations_is_split_into_several_mails(layout: Layout, sink: Sink) -> None:
    """At most `escalations_per_digest` in one mail; a last one alone is the usual escalation notice."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pairs = await three_waiting_too_long(relay, clock)
        result = await sweep.run(relay.settings, relay.engine, clock, escalations_per_digest=2)
        assert sorted(p.pair_id for p in result.sent if p.kind == "nudge.escalation") == sorted(p.id for p in pairs)
        relay.worker.wake()
        received = await wait_for_notices(sink, 3 + 2)
        subjects = sorted(str(r.message["Subject"]) for r in received
                          if r.rcpt_tos == ["coordinator@school.example"])
        last = max(pairs, key=lambda pair: pair.id)  # the pages are read in pair order
        assert subjects == sorted(["[STEM mentoring] 2 mentees have waited too long for an answer",
                                   f"Pair {last.id}: {last.mentee.handle} has waited 8 days for {last.mentor.handle}"])


async def test_quiet_hours_follow_the_program_setting(layout: Layout, sink: Sink) -> None:
    write_program(layout, responsiveness={"nudge_mentor_after": "1h", "second_nudge_after": "2h",
                                          "escalate_after": "3h", "quiet_hours": "12:00-18:00"})
    clock = FixedClock(T0)  # 16:00 in Berlin: inside this program's quiet hours
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", "Question")
        clock.advance(timedelta(hours=1, minutes=30))  # 17:30 Berlin: due, but quiet
        result = await sweep.run(relay.settings, relay.engine, clock)
        assert result.sent == [] and [p.kind for p in result.deferred] == ["nudge.first"]
        assert result.lines() == [
            f"quiet hours, later: nudge.first to mentor Oak (pair {pair.id}): Maple is waiting for your answer"]
        clock.advance(timedelta(minutes=30))  # 18:00 Berlin; now the second stage is due
        assert [p.kind for p in (await sweep.run(relay.settings, relay.engine, clock)).sent] == ["nudge.second"]


@pytest.mark.parametrize(("responsiveness", "problem"), [
    ({"quiet_hours": "9pm-8am"}, "expected quiet hours such as 21:00-08:00"),
    ({"quiet_hours": "25:00-08:00"}, "hours go from 00 to 23"),
    ({"nudge_mentor_after": "two days"}, "expected a duration such as 30m, 48h or 7d"),
    ({"nudge_mentor_after": "100h"}, "nudge_mentor_after < second_nudge_after < escalate_after"),
    ({"remind_after": "1d"}, "responsiveness.remind_after: unknown key"),
])
def test_bad_responsiveness_is_reported_with_file_and_line(layout: Layout, responsiveness: dict[str, str],
                                                           problem: str) -> None:
    write_program(layout, responsiveness=responsiveness)
    with pytest.raises(ConfigError) as raised:
        load_settings(layout.config)
    message = "\n".join(raised.value.messages)
    assert f"{layout.root / 'programs' / 'stem.yaml'}:" in message and problem in message
    result = cli(layout, "check-config")
    assert result.returncode == 1 and problem in result.stderr and "Traceback" not in result.stderr


async def test_nudges_run_from_the_command_line(layout: Layout, sink: Sink) -> None:
    write_program(layout, responsiveness={"quiet_hours": ""})
    real_now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(real_now - timedelta(hours=50))
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", "Question about internships")
        now = real_now.isoformat()
        dry = await acli(layout, "nudges", "run", "--now", now, "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        planned = json.loads(dry.stdout)
        assert planned["dry_run"] is True and [p["kind"] for p in planned["sent"]] == ["nudge.first"]
        assert planned["sent"][0]["to_handle"] == "Oak" and planned["sent"][0]["pair_id"] == pair.id
        assert planned["sent"][0]["subject"] == "Maple is waiting for your answer"
        done = await acli(layout, "nudges", "run", "--now", now)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            f"sent nudge.first to mentor Oak (pair {pair.id}): Maple is waiting for your answer")
        again = await acli(layout, "nudges", "run", "--now", now)
        assert again.stdout.strip() == f"nothing due at {real_now.isoformat()}"
        clock.advance(timedelta(hours=51))  # the relay's own clock reaches the time the notice was queued
        relay.worker.wake()
        received = await wait_for_notices(sink, 1)
        assert [r.rcpt_tos for r in received] == [[OAK[0]]]
    events = await acli_json(layout, "events", "list", "--kind", "nudge.first", "--json")
    assert len(events) == 1 and events[0]["detail"]["waited_hours"] == 50


def test_nudges_run_refuses_a_bad_time(layout: Layout) -> None:
    result = cli(layout, "nudges", "run", "--now", "tomorrow")
    assert result.returncode == 2 and "expected a time such as" in result.stderr
    assert "Traceback" not in result.stderr


def test_templates_never_hold_a_real_address() -> None:
    """Addresses in templates are only ever the relay's own (something@{{ domain }})."""
    from relay.notices import TEMPLATES

    templates = sorted(TEMPLATES.glob("*.j2"))
    assert {"nudge_mentor.txt.j2", "coordinator_unanswered.txt.j2", "checkin.txt.j2"} <= {t.name for t in templates}
    for template in templates:
        assert re.findall(r"\S*@(?!\{\{ ?domain(?:\|e)? ?\}\})\S*", template.read_text()) == [], template.name


async def test_serve_runs_the_sweeps_on_its_scheduler(layout: Layout, sink: Sink) -> None:
    """No hand-run sweep: the relay's scheduler sweeps at start (and then every few minutes)."""
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", "Question about internships")
        assert relay.scheduler.job_names() == ["digest-sweep", "hold-sweep", "nudge-sweep", "retention-purge",
                                               "safeguarding-sweep"]
    clock.advance(timedelta(hours=49))
    async with running(layout, clock):
        received = await wait_for_notices(sink, 1)
    assert [(r.rcpt_tos, str(r.message["Subject"])) for r in received] == [
        ([OAK[0]], "Maple is waiting for your answer")]


def test_the_waiting_subject_is_read_as_the_stdlib_parser_reads_it() -> None:
    """A reminder quotes the waiting message's subject as the mentor's mail client shows it. The sweep reads
    plain one-line subjects without the parser (relay/nudges/activity.py); the stdlib parser on the whole
    message is the oracle, over the messages of the corpus and the edge cases of a plain line. (Left out: a
    message whose header block the parser cuts short at a broken line, MissingHeaderBodySeparatorDefect; the
    copies the relay sends, where the sweep reads subjects, never have one.)"""
    from email import message_from_bytes
    from email.errors import MissingHeaderBodySeparatorDefect
    from email.message import EmailMessage
    from email.policy import default as default_policy
    from pathlib import Path

    from relay.nudges.activity import _subject

    def parsed(raw: bytes) -> EmailMessage:
        return message_from_bytes(raw, policy=default_policy)  # type: ignore[return-value]

    corpus = [raw for raw in (path.read_bytes() for path in sorted((Path(__file__).parent / "data").rglob("*.eml")))
              if not any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in parsed(raw).defects)]
    assert len(corpus) > 50
    edges = [b"Subject: plain words\r\n\r\nbody", b"subject:no space\n\nbody", b"Subject:   spaced  out  \r\n\r\n",
             b"Subject:\t tab first\r\n\r\n", b"Subject: \r\n\r\n", b"Subject:\r\n\r\n", b"To: a@b.example\r\n\r\n",
             b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n", b"Subject: literally =? and ?= here\r\n\r\n",
             b"Subject: folded\r\n over\r\n\r\n", b"Subject: caf\xc3\xa9 8-bit\r\n\r\n",
             b"SUBJECT: shouting\r\nSubject: second\r\n\r\n", b"X-Subject: not it\r\nSubject: it\r\n\r\n"]
    for raw in corpus + edges:
        assert _subject(raw) == str(parsed(raw).get("Subject") or "(no subject)"), raw[:200]


async def test_a_nudge_planned_before_its_recipient_is_erased_is_not_sent_to_them(layout: Layout, sink: Sink) -> None:
    """The sweep plans and composes a page's mail before its write transaction; a `person erase` committed in
    between (another process) leaves the mentor's old address in the plan. The write checks each member's
    address again, and drops the nudge: its key stays free, and nothing is queued to the erased address."""
    clock = FixedClock(T0)
    erased: list[object] = []

    @asynccontextmanager
    async def turn() -> AsyncIterator[None]:  # held around each write transaction: the first comes after the plan
        if not erased:
            erased.append(await erase_person(relay.settings, relay.engine, OAK[0], clock.now(), "cli:test"))
        yield

    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", "Question")
        clock.advance(timedelta(hours=48))
        result = await sweep.run(relay.settings, relay.engine, clock, turn=turn)
        async with relay.engine.connect() as connection:
            queued = (await connection.execute(select(outbound.c.rcpt))).scalars().all()
    assert erased
    assert [item.kind for item in result.sent if item.to_role == "mentor"] == []
    assert OAK[0] not in queued


HOLD_ALL = """
default_action: hold
moderators:
  notify: [moderator@school.example]
"""


async def test_a_held_message_waits_for_the_mentor_from_its_release(layout: Layout, sink: Sink) -> None:
    """Maple's question is held for review and released 47 hours later: the mentor got it then, so the
    reminders and the escalation count from the release (the first came an hour after it, and the coordinator
    was told the day after the second reminder), and the reminder says when it reached the mentor."""
    (layout.root / "policies" / "adult-professional.yaml").write_text(HOLD_ALL)
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        to = pair.mentor.alias_address(DOMAIN)
        code, text = await send(relay.settings.relay.smtp.port, simple_message(MAPLE[0], to, "Question", "Hello!"),
                                MAPLE[0], to)
        assert code == 250, text
        clock.advance(timedelta(hours=47))
        assert (await sweep.run(relay.settings, relay.engine, clock)).sent == []  # held: nobody to remind
        released = await release(relay.settings, relay.engine, clock, text.rsplit(" ", 1)[-1], "moderator")
        assert released.status == "released"

        async def kinds_after(hours: int) -> list[str]:
            clock._now = hour(47 + hours)  # hours after the release
            return sorted(p.kind for p in (await sweep.run(relay.settings, relay.engine, clock)).sent)

        assert await kinds_after(1) == []
        assert await kinds_after(47) == []
        assert await kinds_after(48) == ["nudge.first"]
        assert await kinds_after(96) == ["nudge.second"]
        assert await kinds_after(167) == []
        assert await kinds_after(168) == ["nudge.escalation"]
        relay.worker.wake()
        reminder = next(r.message for r in await wait_for_notices(sink, 3)
                        if str(r.message["Subject"]) == "Maple is waiting for your answer")
        assert '"Question", sent Wednesday, 3 June 2026, 15:00 (Europe/Berlin), 48 hours ago' in words(reminder)
