"""A group's life: each new member is welcomed (the group's name, their handle, the group's alias, their
own private alias, the safety rules; handles only), a nickname given at `group add` is scrubbed like the
name, `group close --reason` sends every member a farewell and tells the coordinator, and mail from a
member to the closed group is archived, not delivered, with one polite note a week (strangers still 550)."""

from __future__ import annotations

import asyncio
import json

from relay.service import Relay
from tests.nudging import words, write_program
from tests.support import DOMAIN, Layout, Sink, acli, acli_json, eventually, nothing_queued, send, simple_message
from tests.test_groups import PEOPLE, STRANGER, add

REAL = [w for p in PEOPLE for w in (p["email"], *p["name"].split())] + ["Lenny"]


def real_words_in(message: object, own: str) -> list[str]:
    """Real names and addresses in a notice, besides its own recipient's address in To."""
    text = message.as_string().replace(own, "")  # type: ignore[attr-defined]
    return [w for w in REAL if w in text]


async def test_a_group_from_welcome_to_farewell(relay: Relay, layout: Layout, sink: Sink) -> None:
    write_program(layout, welcome=True, goals=["Build a robot together"])
    group = await acli_json(layout, "group", "create", "--program", "stem", "--name", "Robotics", "--json")
    gid, alias = group["id"], group["alias"]
    for person in PEOPLE:
        extra = ("--nickname", "Lenny") if person["handle"] == "Cedar" else ()
        code, text = await asyncio.to_thread(add, layout, gid, person["role"], person["email"], person["name"],
                                             person["handle"], *extra)
        assert code == 0, text
    shown = await acli_json(layout, "group", "show", str(gid), "--json")
    private = {m["handle"]: m["alias"] for m in shown["members"]}

    welcomes = {r.rcpt_tos[0]: r.message for r in await sink.wait_for(4)}
    assert set(welcomes) == {p["email"] for p in PEOPLE}
    for person in PEOPLE:
        message = welcomes[person["email"]]
        assert str(message["Subject"]) == "Welcome to Robotics in STEM mentoring"
        text = words(message.get_body(("plain",)))
        assert f"Hello {person['handle']}," in text and f"with the handle {person['handle']}" in text
        assert f"Write to the whole group at {alias}" in text
        assert f"Members can write to you alone at {private[person['handle']]}" in text
        assert "Build a robot together" in text and "Do not share contact details" in text
        assert f"concern@{DOMAIN}" in text
        assert real_words_in(message, person["email"]) == []
    # The last member sees who was there before; the first sees nobody else yet.
    assert "Its members so far: Oak, Maple, Birch." in words(welcomes[PEOPLE[3]["email"]].get_body(("plain",)))
    assert "Its members so far" not in words(welcomes[PEOPLE[0]["email"]].get_body(("plain",)))

    # The nickname is scrubbed in the copies like the real name.
    birch = PEOPLE[2]
    code, reply = await send(layout.smtp_port, simple_message(birch["email"], alias, "Plan",
                                                              "Lenny, can you bring the motors?"),
                             birch["email"], alias)
    assert code == 250, reply
    copies = (await sink.wait_for(7))[4:]
    assert len(copies) == 3
    for copy in copies:
        assert "Lenny" not in copy.message.as_string()
        assert "Cedar, can you bring the motors?" in words(copy.message.get_body(("plain",)))

    # Closing: every member gets a farewell with the reason, the coordinator is told.
    closed = await acli(layout, "group", "close", str(gid), "--reason", "the term has ended", "--json")
    assert closed.returncode == 0, closed.stderr
    farewells = {r.rcpt_tos[0]: r.message for r in (await sink.wait_for(12))[7:]}
    assert set(farewells) == {p["email"] for p in PEOPLE} | {"coordinator@school.example"}
    for person in PEOPLE:
        text = words(farewells[person["email"]].get_body(("plain",)))
        assert str(farewells[person["email"]]["Subject"]) == "Robotics has come to its end"
        assert f"Hello {person['handle']}," in text and "The program's note: the term has ended" in text
        assert real_words_in(farewells[person["email"]], person["email"]) == []
    told = words(farewells["coordinator@school.example"].get_body(("plain",)))
    assert f"The group Robotics (id {gid})" in told and "Reason given: the term has ended" in told
    assert "Its 4 members were sent a farewell: Oak, Maple, Birch, Cedar." in told

    # After the end: a member's mail is taken and archived, not passed on; one note a week.
    for attempt in range(2):
        code, reply = await send(layout.smtp_port, simple_message(birch["email"], alias, f"still there {attempt}",
                                                                  "Hello?"), birch["email"], alias)
        assert code == 250, reply
    (note,) = (await sink.wait_for(13))[12:]
    assert note.rcpt_tos == [birch["email"]] and str(note.message["Subject"]) == "Robotics has ended"
    assert "the group Robotics in STEM mentoring has ended" in words(note.message.get_body(("plain",)))
    code, reply = await send(layout.smtp_port, simple_message(STRANGER, alias, "hi", "hello"), STRANGER, alias)
    assert code == 550 and "5.7.1" in reply, reply
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all that was queued has arrived
    assert len(sink.received) == 13
    listed = await acli_json(layout, "group", "show", str(gid), "--json")
    assert [e["kind"] for e in listed["events"]].count("closed_notice") == 1


async def test_a_concern_pauses_the_senders_groups_too(relay: Relay, layout: Layout, sink: Sink) -> None:
    from tests.support import MENTEE, create_pair
    from tests.test_groups import make_group

    pair = await asyncio.to_thread(create_pair, layout)  # Oak and Maple as a pair; both are in the group too
    group = await asyncio.to_thread(make_group, layout)
    gid, alias = group["id"], group["alias"]
    code, reply = await send(layout.smtp_port, simple_message(MENTEE["email"], f"concern@{DOMAIN}", "Worried",
                                                              "Something in the group worries me."),
                             MENTEE["email"], f"concern@{DOMAIN}")
    assert code == 250, reply
    received = {r.rcpt_tos[0]: r.message for r in await sink.wait_for(2)}
    told = words(received["coordinator@school.example"].get_body(("plain",)))
    assert f"The group Robotics (id {gid}) is paused too" in told and f"group resume {gid}" in told
    assert "your conversations are paused" in words(received[MENTEE["email"]].get_body(("plain",)))
    assert (await acli_json(layout, "group", "show", str(gid), "--json"))["status"] == "paused"
    assert (await acli_json(layout, "pair", "show", str(pair["id"]), "--json"))["status"] == "paused"

    # Another member writes to the paused group: taken, held for review, nobody receives it.
    birch = PEOPLE[2]
    code, reply = await send(layout.smtp_port, simple_message(birch["email"], alias, "Hi", "Anyone there?"),
                             birch["email"], alias)
    assert code == 250, reply
    (item,) = await acli_json(layout, "held", "list", "--json")
    assert item["id"] == reply.rsplit(" ", 1)[-1]
    assert any(r.get("rule") == "pair_paused" for r in item["reasons"]), item["reasons"]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all that was queued has arrived
    assert not [r for r in sink.received if r.rcpt_tos[0] in {p["email"] for p in PEOPLE} - {MENTEE["email"]}]

    resumed = await acli(layout, "group", "resume", str(gid), "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["changed"] is True, resumed.stderr
    assert (await acli_json(layout, "group", "show", str(gid), "--json"))["status"] == "active"
    again = await acli(layout, "group", "resume", str(pair["id"]))
    assert again.returncode == 1 and f"no group with id {pair['id']}" in again.stderr


async def test_an_out_of_office_to_a_group_tells_the_others_once(relay: Relay, layout: Layout, sink: Sink) -> None:
    from tests.support import MENTOR
    from tests.test_autoreply import OUT_OF_OFFICE
    from tests.test_groups import make_group

    group = await asyncio.to_thread(make_group, layout)
    alias = group["alias"]
    for attempt in range(2):  # the robot answers twice (two group messages): the others are told once
        code, reply = await send(layout.smtp_port, simple_message(
            f"José Müller <{MENTOR['email']}>", alias, f"Automatic reply: plans {attempt}", OUT_OF_OFFICE,
            Auto_Submitted="auto-replied"), MENTOR["email"], alias)
        assert code == 250, reply
    notices = await sink.wait_for(3)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all that was queued has arrived
    assert len(sink.received) == 3
    assert sorted(r.rcpt_tos[0] for r in notices) == sorted(p["email"] for p in PEOPLE[1:])
    for notice in notices:
        assert str(notice.message["Subject"]) == "Oak (Robotics) is away for now"
        assert notice.message["Auto-Submitted"] == "auto-generated"
        text = notice.message.get_content()
        assert "Oak (Robotics) has an automatic reply switched on" in text
        assert "José" not in text and "bigcorp" not in text and "415" not in text
    decisions = await acli_json(layout, "events", "list", "--kind", "decision", "--json")
    assert [d["detail"]["decision"] for d in decisions] == ["autoreply", "autoreply"]
    (told,) = await acli_json(layout, "events", "list", "--kind", "away_notice", "--json")
    assert sorted(told["detail"]["told"]) == ["Birch", "Cedar", "Maple"]
