"""A private word in a group (a member writing to another member's private alias) stays private end to end,
through real SMTP: the recipient's copy answers the sender alone (To and Reply-To the sender's private
alias; a footer, in the recipient's language, saying it was written to them privately), so that Reply and
Reply all — quoting the private text — reach the sender and nobody else; it is sent at once, never put in
a group digest (which answers the whole group); a held private word released by a moderator looks the same;
and a private word held back for a digest by an earlier version is sent on its own, refaced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select, update

from relay.clock import FixedClock
from relay.config import load_settings
from relay.digests import sweep
from relay.service import Relay
from relay.store.database import transaction
from relay.store.schema import messages, outbound
from tests.consolekit import add_moderator
from tests.nudging import running, write_program
from tests.support import MENTEE, MENTOR, Layout, Received, Sink, acli, eventually, nothing_queued, send, simple_message
from tests.test_groups import PEOPLE, assert_no_identity
from tests.test_moderation import HOLD_ALL, MODERATOR, use_policy

OAK, MAPLE, BIRCH, CEDAR = PEOPLE
SECRET = "My parents are splitting up and I can't focus on the robot."
T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # a Monday, 10:00 in the program's New York


async def make_group(layout: Layout, languages: dict[str, str] | None = None) -> dict[str, Any]:
    """Robotics: Oak (mentor), Maple, Birch and Cedar (mentees), each in `languages`' language (default en)."""
    created = await acli(layout, "group", "create", "--program", "stem", "--name", "Robotics", "--json")
    assert created.returncode == 0, created.stderr
    group = json.loads(created.stdout)
    group["members"] = {}
    for person in PEOPLE:
        language = (languages or {}).get(person["handle"], "en")
        added = await acli(layout, "group", "add", str(group["id"]), "--role", person["role"], "--email",
                           person["email"], "--name", person["name"], "--handle", person["handle"],
                           "--language", language, "--json")
        assert added.returncode == 0, added.stderr
        group["members"][person["handle"]] = json.loads(added.stdout)["id"]
    shown = json.loads((await acli(layout, "group", "show", str(group["id"]), "--json")).stdout)
    group["private"] = {m["handle"]: m["alias"] for m in shown["members"]}
    return group


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def answers(message: EmailMessage) -> set[str]:
    """Where the recipient's client sends Reply (Reply-To) and Reply all (Reply-To, To and Cc)."""
    return {a.addr_spec for name in ("Reply-To", "To", "Cc") if message[name] is not None
            for a in message[name].addresses}


def assert_private(message: EmailMessage, group: dict[str, Any], sender: str) -> None:
    """The copy of a private word from `sender` (a handle): every answer goes to the sender's private alias."""
    alias = group["private"][sender]
    assert message["From"].addresses[0].addr_spec == alias
    assert message["Reply-To"].addresses[0].addr_spec == alias
    assert answers(message) == {alias}, answers(message)
    assert group["alias"] not in message.as_string()
    text = plain(message)
    assert "Reply to answer the whole group" not in text and "wrote to Robotics" not in text


def to(received: list[Received], person: dict[str, str]) -> list[EmailMessage]:
    return [r.message for r in received if r.rcpt_tos == [person["email"]]]


async def test_reply_to_a_private_word_reaches_only_its_sender(relay: Relay, layout: Layout, sink: Sink) -> None:
    group = await make_group(layout, {"Oak": "es"})
    oak_private, maple_private = group["private"]["Oak"], group["private"]["Maple"]
    code, reply = await send(layout.smtp_port, simple_message(
        f"Jane Doe <{MENTEE['email']}>", oak_private, "Just you", f"Can I ask you something alone? {SECRET}"),
        MENTEE["email"], oak_private)
    assert code == 250, reply
    (private,) = to(await sink.wait_for(1), OAK)
    assert_private(private, group, "Maple")
    assert_no_identity(private)
    # the footer, in Oak's language, says it was written to him alone and where Reply goes
    assert plain(private).rstrip().endswith(
        f"Maple te escribió en privado, no al grupo Robotics. \"Responder\" a este mensaje contesta solo a "
        f"Maple, en {maple_private}")

    # Oak presses Reply all (the wider of the two), quoting Maple's words: only Maple receives the answer.
    quoted = "\n".join("> " + line for line in plain(private).splitlines())
    rcpts = sorted(answers(private))
    code, reply = await send(layout.smtp_port, simple_message(
        f"José Müller <{MENTOR['email']}>", ", ".join(rcpts), "Re: Just you",
        f"Of course, I'm sorry to hear that.\n\n{quoted}", In_Reply_To=private["Message-ID"],
        References=private["Message-ID"]), MENTOR["email"], rcpts)
    assert code == 250, reply
    await eventually(lambda: nothing_queued(layout), timeout=20)
    assert [r.rcpt_tos for r in sink.received[1:]] == [[MAPLE["email"]]]
    (answer,) = to(sink.received, MAPLE)
    assert "splitting up" in plain(answer)
    assert_private(answer, group, "Oak")  # and Maple's copy of the answer answers Oak alone, in her English
    assert plain(answer).rstrip().endswith(f"Oak wrote to you privately, not to the group Robotics. Reply to "
                                           f"answer Oak alone, at {oak_private}")

    # The group's own mail keeps the group's face: Reply goes to the group.
    code, reply = await send(layout.smtp_port, simple_message(
        f"Ravi Patel <{BIRCH['email']}>", group["alias"], "Robot", "The arm moves!"), BIRCH["email"], group["alias"])
    assert code == 250, reply
    copies = (await sink.wait_for(5))[2:]
    assert sorted(r.rcpt_tos[0] for r in copies) == sorted(p["email"] for p in (OAK, MAPLE, CEDAR))
    for r in copies:
        assert answers(r.message) == {group["alias"]}
        assert "Birch wrote to Robotics. Reply to answer the whole group" in plain(r.message)


async def test_a_private_word_is_sent_at_once_not_in_the_group_digest(layout: Layout, sink: Sink) -> None:
    write_program(layout, group_digest="daily")
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    async with running(layout, clock) as relay:
        group = await make_group(layout)
        birch_private = group["private"]["Birch"]
        code, reply = await send(layout.smtp_port, simple_message(
            f"{MENTOR['name']} <{MENTOR['email']}>", group["alias"], "Plans", "Robot build on Friday."),
            MENTOR["email"], group["alias"])
        assert code == 250, reply
        code, reply = await send(layout.smtp_port, simple_message(
            f"{MENTOR['name']} <{MENTOR['email']}>", birch_private, "Just between us",
            "Birch, your last grade worries me; let's talk about it privately."), MENTOR["email"], birch_private)
        assert code == 250, reply
        # the private word arrives now; the group's message waits for tomorrow's digest
        (private,) = to(await sink.wait_for(1), BIRCH)
        assert private["Subject"] == "Just between us" and private.get_content_type() == "text/plain"
        assert_private(private, group, "Oak")

        clock._now = T0 + timedelta(days=1)
        result = await sweep.run(settings, relay.engine, clock)
        assert result.released == 0
        relay.worker.wake()
        await sink.wait_for(4)  # a digest each for Maple, Birch and Cedar
        await eventually(lambda: nothing_queued(layout), timeout=20)
        (digest,) = to(sink.received[1:], BIRCH)
        assert digest.get_content_type() == "multipart/mixed"
        assert "Plans" in digest.as_string() and "grade worries me" not in digest.as_string()
        assert len(sink.received) == 4


async def test_a_released_private_word_stays_private(relay: Relay, layout: Layout, sink: Sink) -> None:
    use_policy(layout, HOLD_ALL)
    write_program(layout, group_digest="daily")  # a digest never takes a private word, released or not
    group = await make_group(layout)
    oak_private = group["private"]["Oak"]
    code, reply = await send(layout.smtp_port, simple_message(
        f"Jane Doe <{MENTEE['email']}>", oak_private, "Just you", SECRET), MENTEE["email"], oak_private)
    assert code == 250, reply
    queue_id = reply.rsplit(" ", 1)[-1]
    await sink.wait_for(2)  # the sender's notice and the moderator's
    await add_moderator(layout, "ana", "stem")
    released = await acli(layout, "held", "release", queue_id, "--moderator", "ana")
    assert released.returncode == 0, released.stderr
    await eventually(lambda: nothing_queued(layout), timeout=20)
    delivered = [r for r in sink.received if r.rcpt_tos[0] not in (MENTEE["email"], MODERATOR)]
    assert [r.rcpt_tos for r in delivered] == [[OAK["email"]]], "the released private word was not sent now"
    assert plain(delivered[0].message).startswith(SECRET)
    assert_private(delivered[0].message, group, "Maple")
    assert "Maple wrote to you privately" in plain(delivered[0].message)


async def test_a_private_word_held_back_by_an_earlier_version_is_sent_alone(layout: Layout, sink: Sink) -> None:
    """A copy an earlier version held back for the digest looked like the group's mail (To and Reply-To the
    group, the group's footer): the sweep sends it on its own, answering its sender alone."""
    write_program(layout, group_digest="daily")
    clock = FixedClock(T0)
    settings = load_settings(layout.config)
    async with running(layout, clock) as relay:
        group = await make_group(layout)
        code, reply = await send(layout.smtp_port, simple_message(
            f"{MENTOR['name']} <{MENTOR['email']}>", group["alias"], "Just between us", "Your grade worries me."),
            MENTOR["email"], group["alias"])
        assert code == 250, reply
        queue_id = reply.rsplit(" ", 1)[-1]
        # as the earlier version wrote a private word to Birch: Birch's copy alone, held back, the group's face
        async with transaction(relay.engine) as connection:
            await connection.execute(update(messages).where(messages.c.id == queue_id)
                                     .values(recipient_id=group["members"]["Birch"]))
            await connection.execute(update(outbound).where(outbound.c.message_id == queue_id,
                                                            outbound.c.rcpt != BIRCH["email"]).values(state="sent"))
        async with relay.engine.connect() as connection:
            held_back = (await connection.execute(select(outbound.c.raw).where(
                outbound.c.message_id == queue_id, outbound.c.rcpt == BIRCH["email"]))).scalar_one()
        clock._now = T0 + timedelta(days=1)
        result = await sweep.run(settings, relay.engine, clock)
        assert result.sent == [] and result.released == 1
        relay.worker.wake()
        (copy,) = to(await sink.wait_for(1), BIRCH)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert len(sink.received) == 1
        assert copy.get_content_type() == "text/plain" and copy["Subject"] == "Just between us"
        assert_private(copy, group, "Oak")
        assert plain(copy).rstrip().endswith(f"Oak wrote to you privately, not to the group Robotics. Reply to "
                                             f"answer Oak alone, at {group['private']['Oak']}")
        # the held-back copy is chained as written: it keeps its bytes (now `digested`) and the refaced one is a
        # new entry (the archive's content hash of the held-back copy still matches)
        async with relay.engine.connect() as connection:
            rows = (await connection.execute(select(outbound.c.state, outbound.c.raw).where(
                outbound.c.message_id == queue_id, outbound.c.rcpt == BIRCH["email"]))).all()
        assert sorted(row.state for row in rows) == ["digested", "sent"]
        assert [row.raw for row in rows if row.state == "digested"] == [held_back]
