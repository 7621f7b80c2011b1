"""A member of groups only (no pair) is a participant at the program addresses, through real SMTP: help@
reaches the coordinator, who answers through the relay; concern@ pauses their group; away@ tells the
group's members of the other role and pauses nudges for them. Handles only in the coordinator's mail."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from email.message import EmailMessage

from sqlalchemy import select

from relay.service import Relay
from relay.store.schema import outbound
from tests.support import DOMAIN, Layout, Sink, acli, eventually, nothing_queued, rows_now, send, simple_message
from tests.test_groups import PEOPLE, make_group

COORDINATOR = "coordinator@school.example"
OAK, MAPLE, BIRCH, CEDAR = PEOPLE  # one mentor, three mentees; none of them is in a pair


async def write(relay: Relay, person: dict[str, str], to: str, subject: str, body: str) -> tuple[int, str]:
    raw = simple_message(f"{person['name']} <{person['email']}>", to, subject, body)
    return await send(relay.settings.relay.smtp.port, raw, person["email"], to)


def inbox(sink: Sink, address: str) -> list[EmailMessage]:
    return [r.message for r in sink.received if r.rcpt_tos == [address]]


def words(message: EmailMessage) -> str:
    return str(message.get_content()).replace("\r\n", "\n")


async def group_status(layout: Layout, group_id: int) -> dict:  # type: ignore[type-arg]
    shown = await acli(layout, "group", "show", str(group_id), "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


async def test_help_from_a_member_of_groups_only_reaches_the_coordinator_and_back(relay: Relay, layout: Layout,
                                                                                  sink: Sink) -> None:
    group = await asyncio.to_thread(make_group, layout)
    code, reply = await write(relay, BIRCH, f"help@{DOMAIN}", "Too many messages", "Can I get fewer mails?")
    assert code == 250, reply
    [to_coordinator] = await eventually(lambda: inbox(sink, COORDINATOR))
    assert str(to_coordinator["Subject"]) == "[Help] Birch (mentee, group Robotics): Too many messages"
    body = words(to_coordinator)
    assert f"group Robotics (id {group['id']}): Birch is a mentee" in body and "Can I get fewer mails?" in body
    assert all(secret not in to_coordinator.as_string() for secret in (BIRCH["email"], BIRCH["name"]))
    [confirmation] = await eventually(lambda: inbox(sink, BIRCH["email"]))
    assert str(confirmation["Subject"]) == "Your message reached the coordinator"

    reply_to = str(to_coordinator["Reply-To"])
    code, reply = await send(relay.settings.relay.smtp.port,
                             simple_message(COORDINATOR, reply_to, "Re: Too many messages", "Write to digest@."),
                             COORDINATOR, reply_to)
    assert code == 250, reply
    answers = await eventually(lambda: [m for m in inbox(sink, BIRCH["email"]) if "help@" in str(m["From"])])
    assert "Write to digest@." in words(answers[0])


async def test_a_concern_from_a_member_of_groups_only_pauses_the_group(relay: Relay, layout: Layout,
                                                                       sink: Sink) -> None:
    group = await asyncio.to_thread(make_group, layout)
    code, reply = await write(relay, CEDAR, f"concern@{DOMAIN}", "Worried", "Someone asked for my number.")
    assert code == 250, reply
    [to_coordinator] = await eventually(lambda: inbox(sink, COORDINATOR))
    assert str(to_coordinator["Subject"]).startswith("URGENT: [Concern] Cedar (mentee, group Robotics)")
    assert f"The group Robotics (id {group['id']}) is paused too" in words(to_coordinator)
    assert to_coordinator["Importance"] == "high"
    [confirmation] = await eventually(lambda: inbox(sink, CEDAR["email"]))
    assert "your conversation is paused" in words(confirmation)
    assert (await group_status(layout, group["id"]))["status"] == "paused"
    # mail to the paused group is kept and held, not delivered
    code, reply = await write(relay, OAK, group["alias"], "Hello", "How is everyone?")
    assert code == 250, reply
    held = json.loads((await acli(layout, "held", "list", "--json")).stdout)
    assert [i["conversation"]["name"] for i in held] == ["Robotics"]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absences
    assert inbox(sink, MAPLE["email"]) == [] and inbox(sink, BIRCH["email"]) == []


async def test_away_from_a_mentor_of_groups_only_tells_the_mentees(relay: Relay, layout: Layout, sink: Sink) -> None:
    group = await asyncio.to_thread(make_group, layout)
    until = date.today() + timedelta(days=30)
    code, reply = await write(relay, OAK, f"away@{DOMAIN}", f"until {until.isoformat()}", "Travelling.")
    assert code == 250, reply
    for mentee in (MAPLE, BIRCH, CEDAR):
        [told] = await eventually(lambda m=mentee: inbox(sink, m["email"]))
        assert str(told["Subject"]).startswith("Oak is away until") and "Your mentor Oak is away" in words(told)
        assert all(OAK[k] not in told.as_string() for k in ("email", "name"))
    [confirmation] = await eventually(lambda: inbox(sink, OAK["email"]))
    assert str(confirmation["Subject"]).startswith("Away: until")
    assert "Robotics knows that you will write again" in words(confirmation)
    shown = json.loads((await acli(layout, "events", "list", "--kind", "away.set", "--json")).stdout)
    assert [(e["pair_id"], e["detail"]["until"]) for e in shown] == [(group["id"], until.isoformat())]

    code, reply = await write(relay, OAK, f"away@{DOMAIN}", "back", "I am back.")
    assert code == 250, reply
    backs = await eventually(lambda: [m for m in inbox(sink, MAPLE["email"]) if "is back" in str(m["Subject"])])
    assert "Your mentor Oak is back" in words(backs[0])


async def test_away_from_a_mentee_of_groups_only_tells_the_mentor_only(relay: Relay, layout: Layout,
                                                                       sink: Sink) -> None:
    await asyncio.to_thread(make_group, layout)
    until = date.today() + timedelta(days=10)
    code, reply = await write(relay, MAPLE, f"away@{DOMAIN}", f"until {until.isoformat()}", "Exams.")
    assert code == 250, reply
    [told] = await eventually(lambda: inbox(sink, OAK["email"]))
    assert "Your mentee Maple is away" in words(told)
    await eventually(lambda: inbox(sink, MAPLE["email"]))  # the confirmation
    # every notice was queued in the away@ message's one transaction: none is for the other mentees
    queued = [row.rcpt for row in rows_now(layout, select(outbound.c.rcpt))]
    assert sorted(queued) == sorted([OAK["email"], MAPLE["email"]])
