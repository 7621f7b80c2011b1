"""Endings by hand, end to end through real SMTP: `pair close` (with and without a reason) sends both
members a farewell in their own language and tells the coordinator, once; later mail to a closed alias
gets the polite ended note; the contact exchange after a close (not after a concern); `program end`
closes every open pair and group of a program, asks for --yes and sends nothing twice; a person whose
pair ended may be enrolled again with their handle (re-match) and mail flows in the new pair."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import func, select

from relay.config import load_settings
from relay.service import Relay
from relay.store.conversations import close_conversation
from relay.store.database import create_engine, transaction
from relay.store.events import list_events
from relay.store.schema import outbound
from tests.nudging import words, write_program
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Received,
    Sink,
    acli,
    acreate_pair,
    eventually,
    nothing_queued,
    rows,
    send,
    simple_message,
)
from tests.test_groups import PEOPLE, make_group

COORDINATOR = "coordinator@school.example"
STRANGER = "someone@elsewhere.example"
ROWAN = {"email": "rowan.mentor@firm.example.com", "name": "Ruth Okafor", "handle": "Rowan"}
HAZEL = {"email": "hazel.pupil@school.example.com", "name": "Tomás Ibáñez", "handle": "Hazel"}


def shown(message: EmailMessage) -> str:
    """Everything a reader sees: the decoded headers and every text part."""
    texts = [f"{name}: {value}" for name, value in message.items()]
    texts += [part.get_content() for part in message.walk() if part.get_content_type().startswith("text/")]
    return "\n".join(texts)


def assert_hides(received: Received, *people: dict[str, str]) -> None:
    """Neither the real name nor the address of these people is in the mail, decoded or raw."""
    seen = shown(received.message)
    for person in people:
        for secret in (person["name"], person["email"]):
            assert secret not in seen and secret.encode() not in received.raw, (secret, seen)


def to(sink: Sink, address: str, start: int = 0) -> list[Received]:
    return [r for r in sink.received[start:] if r.rcpt_tos == [address]]


async def outbound_count(layout: Layout) -> int:
    return int((await rows(layout, select(func.count()).select_from(outbound)))[0][0])


async def events_of(relay: Relay, pair_id: int, kind: str) -> list[dict[str, Any]]:
    async with relay.engine.connect() as connection:
        return [e for e in await list_events(connection, pair_id=pair_id) if e["kind"] == kind]


@asynccontextmanager
async def serving(layout: Layout) -> AsyncIterator[Relay]:
    """The relay on the real clock (the `relay` fixture's), started after the test changed the program."""
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


async def mail(layout: Layout, sender: str, alias: str, subject: str, body: str = "Hello!") -> None:
    code, text = await send(layout.smtp_port, simple_message(sender, alias, subject, body), sender, alias)
    assert code == 250, text


async def test_close_with_a_reason_says_goodbye_to_both_and_tells_the_coordinator(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout, MENTOR, MENTEE, "stem", "--mentee-language", "es")
    await mail(layout, MENTEE["email"], pair["mentor_alias"], "Hello Oak")
    await sink.wait_for(1)

    too_long = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "x" * 1001)
    assert too_long.returncode == 1 and "at most 1000" in too_long.stderr and "Traceback" not in too_long.stderr
    assert json.loads((await acli(layout, "pair", "show", str(pair["id"]), "--json")).stdout)["status"] == "active"
    closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "The spring term is over", "--json")
    assert closed.returncode == 0, closed.stderr
    assert json.loads(closed.stdout) == {"id": pair["id"], "closed": True, "changed": True}
    await sink.wait_for(4)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
    (mentor_farewell,) = to(sink, MENTOR["email"], 1)
    assert str(mentor_farewell.message["Subject"]) == "Thank you, and goodbye from STEM mentoring"
    text = words(mentor_farewell.message)
    assert "Your conversation with Maple in STEM mentoring has come to its end" in text
    assert "The program's note: The spring term is over" in text
    assert "share@" not in text  # the program does not offer the contact exchange
    assert_hides(mentor_farewell, MENTEE)
    (mentee_farewell,) = to(sink, MENTEE["email"])
    assert str(mentee_farewell.message["Subject"]) == "Gracias y adiós de parte de STEM mentoring"
    assert "Nota del programa: The spring term is over" in words(mentee_farewell.message)
    assert "Oak" in words(mentee_farewell.message)
    assert_hides(mentee_farewell, MENTOR)
    (coordinator,) = to(sink, COORDINATOR)
    assert str(coordinator.message["Subject"]) == f"Pair {pair['id']} (Oak and Maple) closed"
    text = words(coordinator.message)
    assert "Reason given: The spring term is over" in text and "Both members were sent a farewell" in text
    assert_hides(coordinator, MENTOR, MENTEE)

    (event,) = await events_of(relay, pair["id"], "pair_closed")
    assert event["detail"]["reason"] == "The spring term is over" and event["actor"].startswith("cli:")
    assert sorted(event["detail"]["farewells"]) == ["mentee", "mentor"]
    assert len(await events_of(relay, pair["id"], "farewell")) == 2

    # Closing again writes to nobody.
    before = await outbound_count(layout)
    again = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "again")
    assert again.returncode == 0 and "already closed" in again.stdout
    assert await outbound_count(layout) == before
    assert len(await events_of(relay, pair["id"], "pair_closed")) == 1

    # Later mail to the closed alias: archived, not passed on; the sender gets the polite note in Spanish.
    relay.intake.forget_aliases()  # the alias was remembered as active for ALIAS_TTL (2 s) after Maple's mail
    await mail(layout, MENTEE["email"], pair["mentor_alias"], "Are you still there?")
    notes = await eventually(lambda: to(sink, MENTEE["email"])[1:])
    assert str(notes[0].message["Subject"]) == "Tu conversación con Oak ha terminado"
    assert_hides(notes[0], MENTOR)
    code, text = await send(layout.smtp_port, simple_message(STRANGER, pair["mentor_alias"], "hi", "hi"), STRANGER,
                            pair["mentor_alias"])
    assert code == 550 and "only from the person it was set up for" in text
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
    assert len(to(sink, MENTOR["email"], 1)) == 1  # Oak got his farewell and nothing after it
    decisions = [e["detail"]["decision"] for e in await events_of(relay, pair["id"], "decision")]
    assert decisions[-1] == "ended"


async def test_close_without_a_reason_offers_the_contact_exchange(layout: Layout, sink: Sink) -> None:
    write_program(layout, contact_exchange=True)
    async with serving(layout):
        pair = await acreate_pair(layout)
        closed = await acli(layout, "pair", "close", str(pair["id"]))
        assert closed.returncode == 0, closed.stderr
        await sink.wait_for(3)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        for person, partner in ((MENTOR, MENTEE), (MENTEE, MENTOR)):
            (farewell,) = to(sink, person["email"])
            text = words(farewell.message)
            assert "The program's note" not in text
            assert f"Write to share@{DOMAIN} with the subject \"yes {partner['handle']}\"" in text
            assert_hides(farewell, partner)
        assert "The farewell offers them the contact exchange" in words(to(sink, COORDINATOR)[0].message)

        share = f"share@{DOMAIN}"
        for person in (MENTOR, MENTEE):
            code, text = await send(layout.smtp_port, simple_message(person["email"], share, "yes", "."),
                                    person["email"], share)
            assert code == 250, text
        def exchanged() -> list[Received]:
            return [r for r in sink.received if str(r.message["Subject"]).startswith("Staying in touch with")]

        await eventually(lambda: len(exchanged()) >= 2)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        done = exchanged()
        assert sorted(r.rcpt_tos[0] for r in done) == sorted([MENTOR["email"], MENTEE["email"]])
        by_rcpt = {r.rcpt_tos[0]: words(r.message) for r in done}
        assert f"Maple is {MENTEE['name']}, and can be reached at {MENTEE['email']}" in by_rcpt[MENTOR["email"]]


async def test_no_contact_exchange_after_a_concern(layout: Layout, sink: Sink) -> None:
    write_program(layout, contact_exchange=True)
    async with serving(layout):
        pair = await acreate_pair(layout)
        code, text = await send(layout.smtp_port, simple_message(MENTEE["email"], f"concern@{DOMAIN}",
                                                                 "He asked for my phone number", "Uneasy."),
                                MENTEE["email"], f"concern@{DOMAIN}")
        assert code == 250, text
        await sink.wait_for(2)  # the coordinator's urgent notice, Maple's confirmation
        await eventually(lambda: nothing_queued(layout), timeout=20)  # the concern's mail all out before counting
        start = len(sink.received)
        closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "Ended after a concern")
        assert closed.returncode == 0, closed.stderr
        await sink.wait_for(start + 3)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        for person in (MENTOR, MENTEE):
            (farewell,) = to(sink, person["email"], start)
            assert "share@" not in words(farewell.message)
        assert "so the contact exchange was not offered" in words(to(sink, COORDINATOR, start)[0].message)
        code, text = await send(layout.smtp_port, simple_message(MENTEE["email"], f"share@{DOMAIN}", "yes", "."),
                                MENTEE["email"], f"share@{DOMAIN}")
        assert code == 250, text
        answer = await eventually(lambda: to(sink, MENTEE["email"], start)[1:])
        assert str(answer[0].message["Subject"]) == "Staying in touch: not possible"
        assert "the program did not offer to pass on contact details" in words(answer[0].message)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absence
        assert not [r for r in sink.received if str(r.message["Subject"]).startswith("Staying in touch with")]


async def test_program_end_closes_every_open_pair_and_group_once(relay: Relay, layout: Layout, sink: Sink) -> None:
    first = await acreate_pair(layout)
    second = await acreate_pair(layout, ROWAN, HAZEL)
    earlier = await acreate_pair(layout, {"email": "elm@firm.example.com", "name": "Amir Haddad", "handle": "Elm"},
                                 {"email": "ash@school.example.com", "name": "Lea Novak", "handle": "Ash"})
    assert (await acli(layout, "pair", "close", str(earlier["id"]))).returncode == 0
    await sink.wait_for(3)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # the close's mail all out before counting
    group = await asyncio.to_thread(make_group, layout)
    start, before = len(sink.received), await outbound_count(layout)

    asked = await acli(layout, "program", "end", "stem")
    assert asked.returncode == 2
    assert f"pair {first['id']}: Oak (mentor) and Maple (mentee)" in asked.stdout
    assert f"pair {second['id']}: Rowan (mentor) and Hazel (mentee)" in asked.stdout
    assert f"group {group['id']}: Robotics (4 members)" in asked.stdout and f"pair {earlier['id']}" not in asked.stdout
    assert "nothing was ended" in asked.stderr and "--yes" in asked.stderr
    unknown = await acli(layout, "program", "end", "nope", "--yes")
    assert unknown.returncode == 1 and "unknown program 'nope'" in unknown.stderr
    assert await outbound_count(layout) == before

    ended = await acli(layout, "program", "end", "stem", "--reason", "The program year is over", "--yes", "--json")
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout) == {"program": "stem", "pairs": [first["id"], second["id"]],
                                        "groups": [group["id"]], "ended": True}
    await sink.wait_for(start + 2 + 2 + 4 + 1)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
    (summary,) = to(sink, COORDINATOR, start)  # one summary, no notice per pair or group
    assert str(summary.message["Subject"]) == "STEM mentoring has ended"
    text = words(summary.message)
    assert "Reason given: The program year is over" in text and "2 pairs were closed" in text
    assert f"group {group['id']}: Robotics" in text
    for person in (ROWAN, HAZEL):
        (farewell,) = to(sink, person["email"], start)
        assert "The program's note: The program year is over" in words(farewell.message)
        assert_hides(farewell, ROWAN if person is HAZEL else HAZEL)
    group_farewells = [r for r in sink.received[start:] if "has come to its end" in str(r.message["Subject"])
                       and "Robotics" in str(r.message["Subject"])]
    assert sorted(r.rcpt_tos[0] for r in group_farewells) == sorted(p["email"] for p in PEOPLE)
    for received in group_farewells:
        assert "The program's note: The program year is over" in words(received.message)
        assert_hides(received, *[p for p in PEOPLE if p["email"] != received.rcpt_tos[0]])
    # Oak and Maple, in the pair and in the group, each got the pair's farewell and the group's.
    assert len(to(sink, MENTOR["email"], start)) == 2
    assert to(sink, "elm@firm.example.com", start) == []  # closed before: nothing again

    listed = json.loads((await acli(layout, "pair", "list", "--json")).stdout)
    assert {p["status"] for p in listed} == {"closed"}
    assert json.loads((await acli(layout, "group", "show", str(group["id"]), "--json")).stdout)["status"] == "closed"
    after = await outbound_count(layout)
    again = await acli(layout, "program", "end", "stem", "--yes")
    assert again.returncode == 0 and "no open pairs or groups" in again.stdout
    assert await outbound_count(layout) == after
    async with relay.engine.connect() as connection:
        recorded = [e for e in await list_events(connection) if e["kind"] == "program_ended"]
    assert len(recorded) == 1 and recorded[0]["detail"]["reason"] == "The program year is over"


@pytest.mark.parametrize("ending", ["closed", "ended"])
async def test_a_person_is_matched_again_with_their_handle(relay: Relay, layout: Layout, sink: Sink,
                                                           ending: str) -> None:
    if ending == "closed":
        earlier = await acreate_pair(layout)
        assert (await acli(layout, "pair", "close", str(earlier["id"]))).returncode == 0
    else:  # its end date passed and a sweep marked it ended
        earlier = await acreate_pair(layout, MENTOR, MENTEE, "stem", "--end-date", "2026-01-01")
        swept = await acli(layout, "nudges", "run")
        assert swept.returncode == 0 and f"pair {earlier['id']} ended" in swept.stdout, swept.stdout
    # Someone else still may not take Maple's handle.
    taken = await acli(layout, "pair", "create", "--program", "stem", "--mentor-email", ROWAN["email"],
                       "--mentor-name", ROWAN["name"], "--mentor-handle", ROWAN["handle"],
                       "--mentee-email", HAZEL["email"], "--mentee-name", HAZEL["name"], "--mentee-handle", "Maple")
    assert taken.returncode == 1 and "'Maple' is already used in program 'stem'" in taken.stderr
    rematch = await acreate_pair(layout, ROWAN, MENTEE)  # Jane again, as Maple, with a new mentor
    assert rematch["mentee_alias"] != earlier["mentee_alias"]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # the ending's farewells are out before counting
    start = len(sink.received)

    await mail(layout, MENTEE["email"], rematch["mentor_alias"], "Hello Rowan")
    (delivered,) = await eventually(lambda: to(sink, ROWAN["email"], start))
    assert str(delivered.message["Subject"]) == "Hello Rowan"
    assert delivered.message["From"].addresses[0].addr_spec == rematch["mentee_alias"]
    assert_hides(delivered, MENTEE)
    await mail(layout, ROWAN["email"], rematch["mentee_alias"], "Hello Maple")
    (answer,) = await eventually(lambda: to(sink, MENTEE["email"], start))
    assert str(answer.message["Subject"]) == "Hello Maple"
    assert answer.message["From"].addresses[0].addr_spec == rematch["mentor_alias"]
    assert_hides(answer, ROWAN)
    # The old alias still answers with the polite note; Oak hears nothing.
    await mail(layout, MENTEE["email"], earlier["mentor_alias"], "Oak, are you there?")
    note = await eventually(lambda: [r for r in to(sink, MENTEE["email"], start)
                                     if str(r.message["Subject"]) == "Your conversation with Oak has ended"])
    assert_hides(note[0], MENTOR)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before Oak's absence
    assert to(sink, MENTOR["email"], start) == []
    # help@ is about her current pair.
    await mail(layout, MENTEE["email"], f"help@{DOMAIN}", "A question")
    asked = await eventually(lambda: to(sink, COORDINATOR, start))
    assert str(asked[0].message["Subject"]) == f"[Help] Maple (mentee, pair {rematch['id']}): A question"


async def test_one_person_in_two_open_pairs_keeps_them_apart(relay: Relay, layout: Layout, sink: Sink) -> None:
    """What re-matching must not break: one person (Maple) in two open pairs at once, with one handle, has an
    alias of her own in each, and each mentor's mail reaches her from that pair's alias only."""
    first = await acreate_pair(layout)
    second = await acreate_pair(layout, ROWAN, MENTEE)
    aliases = {first["mentor_alias"], first["mentee_alias"], second["mentor_alias"], second["mentee_alias"]}
    assert len(aliases) == 4
    await mail(layout, MENTEE["email"], first["mentor_alias"], "To Oak")
    await mail(layout, MENTEE["email"], second["mentor_alias"], "To Rowan")
    await mail(layout, ROWAN["email"], second["mentee_alias"], "From Rowan")
    await sink.wait_for(3)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
    assert [str(r.message["Subject"]) for r in to(sink, MENTOR["email"])] == ["To Oak"]
    assert [str(r.message["Subject"]) for r in to(sink, ROWAN["email"])] == ["To Rowan"]
    (reply,) = to(sink, MENTEE["email"])
    assert reply.message["From"].addresses[0].addr_spec == second["mentor_alias"]
    assert to(sink, ROWAN["email"])[0].message["From"].addresses[0].addr_spec == second["mentee_alias"]
    # Oak may not use Maple's alias of the other pair.
    code, text = await send(layout.smtp_port, simple_message(MENTOR["email"], second["mentee_alias"], "hi", "hi"),
                            MENTOR["email"], second["mentee_alias"])
    assert code == 550 and "only from the person it was set up for" in text


async def test_mail_taken_in_while_its_pair_is_closed_is_refused_for_a_retry_not_delivered(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    """`pair close` (another process) commits between the RCPT that read the pair as active and the end of
    DATA: the message is not delivered as if the pair were open. It gets 451, and the sender's retry is taken
    as mail to a closed pair: archived, not passed on, the sender told."""
    pair = await acreate_pair(layout)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=layout.smtp_port, timeout=30, start_tls=False)
    await client.connect()
    try:
        await client.mail(MENTEE["email"])
        await client.rcpt(pair["mentor_alias"])
        closed = await acli(layout, "pair", "close", str(pair["id"]), "--json")
        assert closed.returncode == 0, closed.stderr
        await sink.wait_for(2)  # the farewells
        late = simple_message(MENTEE["email"], pair["mentor_alias"], "Late", "Sent as the pair was closed.")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(late)
    finally:
        client.close()
    assert refused.value.code == 451 and "changed" in refused.value.message, refused.value

    code, reply = await send(layout.smtp_port, late, MENTEE["email"], pair["mentor_alias"])  # the retry
    assert code == 250, reply
    await eventually(lambda: nothing_queued(layout), timeout=20)
    subjects = {str(received.message["Subject"]) for received in sink.received}
    assert "Late" not in subjects  # not delivered to the mentor
    assert [event["detail"]["reason"] for event in await events_of(relay, pair["id"], "refused")] == ["changed"]
    assert len(to(sink, MENTEE["email"])) == 2  # her farewell, then the polite ended note


async def test_mail_written_while_a_close_of_its_pair_is_under_way_is_not_delivered(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    """The close is under way (its write transaction open) when the message's write comes: the write waits for it
    (the writers' lock, relay/store/database.py, on both backends), then finds the pair closed. 451, nothing
    delivered, and the retry is mail to a closed pair."""
    pair = await acreate_pair(layout)
    engine = create_engine(load_settings(layout.config).database_url)  # another process's, as `pair close`
    try:
        async with transaction(engine) as connection:
            assert await close_conversation(connection, pair["id"], datetime.now(UTC))
            late = simple_message(MENTEE["email"], pair["mentor_alias"], "Racing", "Sent as the pair closed.")
            sending = asyncio.create_task(send(layout.smtp_port, late, MENTEE["email"], pair["mentor_alias"]))
            await asyncio.wait({sending}, timeout=1.0)
        code, reply = await asyncio.wait_for(sending, 30)
    finally:
        await engine.dispose()
    assert code == 451 and "changed" in reply, (code, reply)
    code, reply = await send(layout.smtp_port, late, MENTEE["email"], pair["mentor_alias"])
    assert code == 250, reply
    await eventually(lambda: nothing_queued(layout), timeout=20)
    assert "Racing" not in {str(received.message["Subject"]) for received in sink.received}
