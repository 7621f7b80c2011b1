"""Moderation end to end: policies hold, redact and reject; moderators release and reject via the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.service import Relay
from relay.store.schema import messages
from tests.consolekit import add_moderator
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    Received,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    cli,
    eventually,
    nothing_queued,
    rows,
    send,
    simple_message,
    write_transactions,
)

MODERATOR = "moderator@school.example"


def write_policy(layout: Layout, name: str, text: str) -> Path:
    path = layout.root / "policies" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def use_policy(layout: Layout, text: str) -> None:
    """Make the layout's program policy (adult-professional) say `text`."""
    write_policy(layout, "adult-professional", text)


async def mentee_writes(layout: Layout, pair: dict, subject: str, body: str) -> str:  # type: ignore[type-arg]
    code, reply = await send(layout.smtp_port, simple_message(
        f"Jane Doe <{MENTEE['email']}>", pair["mentor_alias"], subject, body, message_id=f"<{subject}@client>"),
        MENTEE["email"], pair["mentor_alias"])
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]


def by_rcpt(received: list[Received], rcpt: str) -> list[Received]:
    return [r for r in received if r.rcpt_tos == [rcpt]]


async def decide_json(layout: Layout, *args: str) -> dict:  # type: ignore[type-arg]
    result = await acli(layout, "held", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def held(layout: Layout, *args: str) -> list[dict]:  # type: ignore[type-arg]
    result = await acli(layout, "held", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


HOLD_ALL = f"""
    default_action: hold
    rules:
      contact_info:
        action: reject
    moderators:
      notify: [{MODERATOR}]
"""


async def test_held_message_is_released_once(relay: Relay, layout: Layout, sink: Sink) -> None:
    use_policy(layout, HOLD_ALL)
    pair = await acreate_pair(layout)
    queue_id = await mentee_writes(layout, pair, "hello", "Hi! How was your week?")
    # The sender is told, the moderator is told (with reasons and a console link), the partner waits.
    received = await sink.wait_for(2)
    notice = by_rcpt(received, MENTEE["email"])[0].message
    assert "waiting for review" in notice["Subject"] and notice["In-Reply-To"] == "<hello@client>"
    assert notice["Auto-Submitted"] == "auto-generated"
    assert MENTOR["email"] not in str(notice) and "Müller" not in notice.get_content()
    alert = by_rcpt(received, MODERATOR)[0].message.get_content()
    assert "every message is reviewed" in alert and "Maple to Oak" in alert
    assert f"held message {queue_id} in the review console" in alert  # no console.public_url here: no link
    listing = await held(layout)
    assert [(i["id"], i["pair_id"], i["subject"]) for i in listing] == [(queue_id, pair["id"], "hello")]
    assert listing[0]["reasons"] == [{"rule": "policy", "kind": "review_all", "match": "every message is reviewed",
                                      "action": "hold"}]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the partner's absence
    assert by_rcpt(sink.received, MENTOR["email"]) == []

    await add_moderator(layout, "ana", "stem")
    await add_moderator(layout, "ben", "stem")
    first = await acli(layout, "held", "release", queue_id, "--moderator", "ana")
    assert first.returncode == 0 and "released" in first.stdout
    assert (await decide_json(layout, "release", queue_id, "--moderator", "ben"))["status"] == "already-released"
    delivered = await sink.wait_for(3)
    to_mentor = by_rcpt(delivered, MENTOR["email"])
    assert len(to_mentor) == 1 and to_mentor[0].message.get_content().strip() == "Hi! How was your week?"
    assert await held(layout) == [] and (await held(layout, "--state", "released"))[0]["decided_by"] == "ana"
    # A later message that a rule would reject never waits in the queue.
    await mentee_writes(layout, pair, "number", "Call me on +44 7700 900123 tonight")
    rejected = await eventually(lambda: by_rcpt(sink.received, MENTEE["email"])[1:] or None)
    assert "not delivered" in rejected[0].message["Subject"]
    await sink.wait_for(4)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting the mentor's
    assert len(by_rcpt(sink.received, MENTOR["email"])) == 1
    kinds = [e["kind"] for e in await acli_json(layout, "events", "list", "--json")]
    assert kinds.count("released") == 1 and kinds.count("decision") == 2


async def test_moderator_reject_tells_the_sender_why(relay: Relay, layout: Layout, sink: Sink) -> None:
    use_policy(layout, HOLD_ALL)
    pair = await acreate_pair(layout)
    queue_id = await mentee_writes(layout, pair, "plans", "Can we talk about something private?")
    await sink.wait_for(2)
    await add_moderator(layout, "ana", "stem")
    # the command line acts only as an existing console account, never under a made-up name
    stranger = await acli(layout, "held", "reject", queue_id, "--reason", "x", "--moderator", "mallory")
    assert stranger.returncode == 1 and "no console account named 'mallory'" in stranger.stderr
    result = await acli(layout, "held", "reject", queue_id, "--reason", "Please keep the conversation about school.",
                 "--moderator", "ana")
    assert result.returncode == 0, result.stderr
    notices = await eventually(lambda: by_rcpt(sink.received, MENTEE["email"])[1:] or None)
    text = notices[0].message.get_content().replace("\r\n", "\n")
    # the moderator's words as written, framed by a neutral sentence; never the policy's canned text
    assert "This is what they wrote to you:\n\nPlease keep the conversation about school.\n" in text
    assert "does not follow the program's safety rules" not in text
    assert MENTOR["email"] not in text and "José" not in text
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the partner's absence
    assert by_rcpt(sink.received, MENTOR["email"]) == []
    rejected = await held(layout, "--state", "rejected")
    assert rejected[0]["reject_reason"] == "Please keep the conversation about school."
    assert (await acli(layout, "held", "release", queue_id)).stdout.strip().endswith("nothing changed")
    missing = await acli(layout, "held", "reject", "nope", "--reason", "x")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no held message with id nope"


async def test_redact_delivers_with_a_marker_and_archives_the_original(
    relay: Relay, layout: Layout, sink: Sink,
) -> None:
    use_policy(layout, """
        rules:
          contact_info:
            action: redact
    """)
    pair = await acreate_pair(layout)
    await mentee_writes(layout, pair, "insta", "Follow me on instagram: @jane.doe.art or text 555-867-5309!")
    message = (await sink.wait_for(1))[0].message
    body = message.get_content()
    assert "@jane.doe.art" not in body and "867-5309" not in body
    assert body.count("[contact details removed by the program]") == 2
    decision = (await acli_json(layout, "events", "list", "--kind", "decision", "--json"))[0]["detail"]
    assert decision["decision"] == "redact"
    assert {r["match"] for r in decision["reasons"][1:]} >= {"555-867-5309"}
    # The archive keeps the message as received, byte for byte (read straight from the store).
    ((archived,),) = await rows(layout, select(messages.c.raw))
    assert b"@jane.doe.art or text 555-867-5309!" in archived and b"removed by the program" not in archived


async def test_pair_policy_override_and_two_moderators(relay: Relay, layout: Layout, sink: Sink) -> None:
    write_policy(layout, "youth-strict", """
        rules:
          keywords:
            - name: wellbeing
              action: hold
              release_requires: 2
              words: [self-harm]
    """)
    pair = await acreate_pair(layout, MENTOR, MENTEE, "stem", "--policy", "youth-strict")
    await mentee_writes(layout, pair, "fine", "All good this week.")
    assert len(by_rcpt(await sink.wait_for(1), MENTOR["email"])) == 1  # the override has no default hold
    queue_id = await mentee_writes(layout, pair, "worried", "I have been thinking about Self-Harm again.")
    item = (await eventually(lambda: held(layout)))[0]
    assert item["release_requires"] == 2 and item["reasons"][0]["match"] == "Self-Harm"
    assert item["policy"] == "youth-strict"
    await add_moderator(layout, "ana", "stem")
    await add_moderator(layout, "ben", "stem")
    unnamed = await acli(layout, "held", "release", queue_id)
    assert unnamed.returncode == 1 and "needs 2 moderators: name your console account" in unnamed.stderr
    once = await decide_json(layout, "release", queue_id, "--moderator", "ana")
    assert once == {"id": queue_id, "status": "approved", "approvals": ["ana"], "needed": 2}
    same = await decide_json(layout, "release", queue_id, "--moderator", "ana")
    assert same["status"] == "approved" and same["approvals"] == ["ana"]
    # one shell cannot be two people: the second approval must come from a signed-in account
    second = await acli(layout, "held", "release", queue_id, "--moderator", "ben")
    assert second.returncode == 1 and "already gave this message's one command-line approval (as ana)" in second.stderr
    assert (await held(layout))[0]["approvals"] == ["ana"]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting the mentor's
    assert len(by_rcpt(sink.received, MENTOR["email"])) == 1


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("rules:\n  contact_info:\n    action: burn\n", 3, "rules.contact_info.action"),
        ("rules:\n  telepathy:\n    action: hold\n", 2, "unknown rule"),
        ("rules:\n  attachment:\n    action: hold\n    max_count: many\n", 4, "rules.attachment.max_count"),
        ("rules:\n  attachment:\n    action: hold\n    colour: red\n", 4, "colour: unknown key"),
        ("default_action: maybe\n", 1, "default_action"),
        ("review_within: soon\n", 1, "review_within"),
        ("rules:\n  keywords:\n    - action: hold\n      words: []\n", 4, "words"),
        ("moderators:\n  digest: sometimes\n", 2, "moderators.digest"),
        ("rules: [\n", 2, "invalid YAML"),  # reported where the stream ends unclosed
    ],
)
def test_check_config_names_policy_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    from tests.support import free_port

    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    path = write_policy(layout, "youth-strict", text)
    result = cli(layout, "check-config")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path}:{line}: " in result.stderr and message in result.stderr, result.stderr


async def test_a_bad_policy_edit_keeps_the_last_good_one(relay: Relay, layout: Layout, sink: Sink) -> None:
    use_policy(layout, HOLD_ALL)
    pair = await acreate_pair(layout)
    await mentee_writes(layout, pair, "one", "first")
    await eventually(lambda: held(layout))
    use_policy(layout, "rules:\n  contact_info:\n    action: explode\n")  # broken while the relay runs
    await mentee_writes(layout, pair, "two", "second")

    async def both_held() -> list[dict] | bool:  # type: ignore[type-arg]
        listing = await held(layout)
        return len(listing) == 2 and listing

    assert [i["subject"] for i in await eventually(both_held)] == ["one", "two"]


async def test_hold_queue_service_level(layout: Layout, sink: Sink) -> None:
    """Digest after the period, reminder after review_within, coordinator after escalate_after more;
    nothing is released by time, and overlapping sweeps send nothing twice. The relay's clock is
    injected: the whole relay (intake, sweeps, delivery) lives in the moved time."""
    from datetime import UTC, datetime

    from relay.clock import FixedClock
    from relay.config import load_settings

    use_policy(layout, f"""
        default_action: hold
        review_within: 12h
        escalate_after: 24h
        notices:
          held: null
        moderators:
          notify: [{MODERATOR}]
          digest: 30m
    """)
    clock = FixedClock(datetime.now(UTC))
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        await _service_level_script(relay, layout, sink, clock)
    finally:
        await relay.stop()


async def _service_level_script(relay: Relay, layout: Layout, sink: Sink, clock) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    from datetime import timedelta

    from relay.holdqueue.sweeps import sweep

    pair = await acreate_pair(layout)
    first = await mentee_writes(layout, pair, "first", "one")
    second = await mentee_writes(layout, pair, "second", "two")
    start = clock.now()

    async def at(offset: timedelta):  # type: ignore[no-untyped-def]
        clock.advance(start + offset - clock.now())
        report = await sweep(relay.settings, relay.engine, clock, relay.intake.policies)
        relay.worker.wake()
        return report

    with write_transactions(relay.engine) as writes:  # the sweep runs every minute: nothing due, no write lock
        early = await at(timedelta(minutes=10))
    assert (early.digests, early.reminders, early.escalations) == (0, 0, 0) and writes == []
    digest, again = await asyncio.gather(at(timedelta(minutes=31)), at(timedelta(minutes=31)))
    assert digest.digests + again.digests == 1 and digest.mails + again.mails == [MODERATOR]
    mail = (await eventually(lambda: by_rcpt(sink.received, MODERATOR) or None))[0].message
    assert "2 messages are waiting" in mail.get_content() and f"held message {first}" in mail.get_content()
    reminder = await at(timedelta(hours=12, minutes=1))
    assert (reminder.reminders, reminder.escalations) == (1, 0)
    escalation = await at(timedelta(hours=36, minutes=1))
    assert (escalation.reminders, escalation.escalations) == (0, 1)
    assert escalation.mails == ["coordinator@school.example"]
    with write_transactions(relay.engine) as writes:
        later = await at(timedelta(days=30))
    assert later.mails == [] and writes == []  # each step happens once; nothing expires or is released silently
    text = (await eventually(lambda: by_rcpt(sink.received, "coordinator@school.example") or None))[0]
    assert "not been reviewed in 36 hours" in text.message.get_content()
    assert [i["id"] for i in await held(layout)] == [first, second]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the partner's absence
    assert by_rcpt(sink.received, MENTOR["email"]) == []
    kinds = [e["kind"] for e in await acli_json(layout, "events", "list", "--json")]
    assert (kinds.count("held_digest"), kinds.count("held_reminder"), kinds.count("held_escalated")) == (1, 1, 1)
