"""Safeguarding for groups and communities, end to end through real SMTP and the console over real HTTP,
on the shipped youth-strict policy: an urgent finding in a group's or a community's message tells the
safeguarding lead at once with a console link that opens the item (the group and its members by handle),
and the sweeps of held mail — the urgent follow-up after `urgent_review_within`, the moderators' reminder
after `review_within` and the coordinator's escalation after `escalate_after` — cover group items too."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from relay.clock import FixedClock
from tests.consolekit import add_moderator, serving, session
from tests.safeguarding_kit import COORDINATOR, LEAD, PUBLIC_URL, Inboxes, text, use_shipped_policy
from tests.support import (
    DOMAIN,
    MENTEE,
    Layout,
    Sink,
    acli,
    acli_json,
    eventually,
    nothing_queued,
    send,
    simple_message,
)
from tests.test_communities import MAPLE, OAK, enable_stem, pair
from tests.test_groups import PEOPLE, make_group
from tests.test_safeguarding import DISCLOSURE

IDENTITIES = [secret for p in PEOPLE for secret in (p["email"], p["name"])]


def leaked(message: EmailMessage) -> list[str]:
    whole = str(message) + text(message)
    return [secret for secret in IDENTITIES if secret in whole]


def console_path(message: EmailMessage, queue_id: str) -> str:
    """The console link a mail carries, as a path on the console this test serves on loopback."""
    links = re.findall(rf"{re.escape(PUBLIC_URL)}(/held/\S+)", text(message))
    assert f"/held/{queue_id}" in links, links
    return f"/held/{queue_id}"


async def open_item(layout: Layout, path: str) -> str:
    async with session(layout, "ana") as client:
        page = await client.get(path)
    assert page.status_code == 200, page.text
    return page.text


async def test_an_urgent_group_hold_reaches_the_lead_with_a_working_link_and_every_sweep(layout: Layout,
                                                                                     sink: Sink) -> None:
    use_shipped_policy(layout)
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        await add_moderator(layout, "ana", "stem")
        group = await asyncio.to_thread(make_group, layout)
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", group["alias"], "help", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], group["alias"])
        assert code == 250, reply
        queue_id = reply.rsplit(" ", 1)[-1]
        inbox = Inboxes(sink)
        [alert] = await eventually(lambda: inbox.lead)
        assert alert["Subject"].startswith("URGENT") and leaked(alert) == []
        assert "(group Robotics, Maple to the group Robotics)" in alert["Subject"]
        assert "group Robotics, program STEM mentoring (stem)" in text(alert)  # not "pair N": it is no pair
        page = await open_item(layout, console_path(alert, queue_id))
        assert "URGENT" in page and "From <b>Maple</b> (mentee) to the group <b>Robotics</b>" in page
        assert "Members (4): Oak (mentor), Maple (mentee), Birch (mentee), Cedar (mentee)" in page
        assert "Escalate to safeguarding lead" in page
        await eventually(lambda: inbox.moderators)  # their alert, first in their inbox before the reminder below

        # An hour with nobody acting: the lead and the coordinator are told again, once, with the link.
        clock.advance(timedelta(minutes=61))
        follow_up = await relay.safeguarding.run_once()
        assert sorted(follow_up.mails) == sorted([LEAD, COORDINATOR])
        assert (await relay.safeguarding.run_once()).mails == []
        [told] = await eventually(lambda: inbox.coordinator)
        assert "to the group Robotics" in text(told) and leaked(told) == []
        await open_item(layout, console_path(told, queue_id))

        # Twelve hours (review_within): the moderators are reminded; twelve more: the coordinator is told.
        clock.advance(timedelta(hours=11))
        await relay.sweeper.run_once()
        await eventually(lambda: any("Robotics" in text(m) and queue_id in text(m) for m in inbox.moderators[1:]))
        [reminder] = [m for m in inbox.moderators[1:] if queue_id in text(m)]
        assert "Maple to the group Robotics (group Robotics)" in text(reminder)
        clock.advance(timedelta(hours=12))
        await relay.sweeper.run_once()
        await eventually(lambda: len(inbox.coordinator) == 2)
        escalation = inbox.coordinator[1]
        assert "to the group Robotics" in text(escalation) and leaked(escalation) == []
        others = [p["email"] for p in PEOPLE if p["email"] != MENTEE["email"]]
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absences
        assert all(inbox.of(address) == [] for address in others)  # held throughout: no member got it
    state = await acli(layout, "held", "show", queue_id)
    assert "(held, URGENT)" in state.stdout


async def test_an_urgent_community_message_reaches_the_lead_with_a_working_link(layout: Layout,
                                                                                sink: Sink) -> None:
    use_shipped_policy(layout)
    enable_stem(layout, {"mentors": True, "mentees": True})
    for mentor, mentee in ((OAK, MAPLE), ({**OAK, "email": "amara.okafor@firm.example.com", "name": "Amara Okafor",
                                           "handle": "Elm"}, PEOPLE[2])):
        await asyncio.to_thread(pair, layout, "stem", mentor, mentee)
    async with serving(layout) as relay:
        del relay
        await add_moderator(layout, "ana", "stem")
        mentees = f"mentees@{DOMAIN}"
        raw = simple_message(f"{MAPLE['name']} <{MAPLE['email']}>", mentees, "help", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MAPLE["email"], mentees)
        assert code == 250, reply
        inbox = Inboxes(sink)
        [alert] = await eventually(lambda: inbox.lead)
        assert alert["Subject"].startswith("URGENT") and leaked(alert) == []
        [item] = [line.split()[0] for line in (await acli(layout, "held", "list")).stdout.splitlines()]
        page = await open_item(layout, console_path(alert, item))
        assert "From <b>Maple</b> (mentee) to the group <b>STEM mentoring mentees</b>" in page
        assert "Birch (mentee)" in page and "Ravi Patel" not in page
        await eventually(lambda: inbox.moderators)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absence
        assert inbox.of(PEOPLE[2]["email"]) == []  # the other mentee gets nothing
        assert all(leaked(m) == [] for m in inbox.moderators)


async def test_a_disclosure_to_a_closed_group_or_a_group_of_one_still_reaches_the_lead(layout: Layout,
                                                                                       sink: Sink) -> None:
    """Mail to a closed group is archived, not delivered: but it is read first, and a disclosure is held for a
    person as anywhere else. So is one to a group whose only member so far is its sender."""
    use_shipped_policy(layout)
    async with serving(layout):
        group = await asyncio.to_thread(make_group, layout)
        closed = await acli(layout, "group", "close", str(group["id"]), "--reason", "the term has ended")
        assert closed.returncode == 0, closed.stderr
        await eventually(lambda: nothing_queued(layout), timeout=20)  # the farewells are out before counting
        inbox = Inboxes(sink)
        before = inbox.counts()
        others = [p["email"] for p in PEOPLE if p["email"] != MENTEE["email"]]
        others_before = [len(inbox.of(address)) for address in others]
        routine = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", group["alias"], "hi", "Is anyone here?")
        assert (await send(layout.smtp_port, routine, MENTEE["email"], group["alias"]))[0] == 250
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", group["private"]["Oak"], "please", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], group["private"]["Oak"])
        assert code == 250, reply
        to_closed = reply.rsplit(" ", 1)[-1]
        await eventually(lambda: len(inbox.lead) == before["lead"] + 1)

        alone = await acli(layout, "group", "create", "--program", "stem", "--name", "Chess", "--json")
        assert alone.returncode == 0, alone.stderr
        chess = json.loads(alone.stdout)
        added = await acli(layout, "group", "add", str(chess["id"]), "--role", "mentee", "--email", MENTEE["email"],
                           "--name", MENTEE["name"], "--handle", "Maple", "--language", "en")
        assert added.returncode == 0, added.stderr
        hello = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", chess["alias"], "hi", "Hello, anyone here?")
        assert (await send(layout.smtp_port, hello, MENTEE["email"], chess["alias"]))[0] == 250  # archived only
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", chess["alias"], "anyone?", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], chess["alias"])
        assert code == 250, reply
        to_lone = reply.rsplit(" ", 1)[-1]
        await eventually(lambda: len(inbox.lead) == before["lead"] + 2)

        listed = await acli_json(layout, "held", "list", "--json")
        assert sorted((item["id"], item["severity"]) for item in listed) == sorted(
            [(to_closed, "urgent"), (to_lone, "urgent")])  # the routine ones are archived, not held
        assert all(leaked(alert) == [] for alert in inbox.lead)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert [len(inbox.of(address)) for address in others] == others_before  # no former member got it


async def test_a_reply_to_a_closed_groups_farewell_reaches_the_lead(layout: Layout, sink: Sink) -> None:
    """A member of a group only, whose group has ended, presses Reply on the farewell (Reply-To help@) and
    writes a disclosure: help@ takes mail from the members of closed groups as from those of closed pairs,
    so the coordinator and the lead are told, urgently; the group stays closed."""
    use_shipped_policy(layout)
    async with serving(layout):
        group = await asyncio.to_thread(make_group, layout)
        closed = await acli(layout, "group", "close", str(group["id"]), "--reason", "the term has ended")
        assert closed.returncode == 0, closed.stderr
        inbox = Inboxes(sink)
        [farewell] = await eventually(lambda: inbox.of(MENTEE["email"]))
        assert farewell["Reply-To"] == f"help@{DOMAIN}"
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", farewell["Reply-To"],
                             f"Re: {farewell['Subject']}", "Thank you. " + DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], farewell["Reply-To"])
        assert code == 250, reply
        [told] = await eventually(lambda: inbox.lead)
        assert str(told["Subject"]).startswith("URGENT: ") and "group Robotics" in str(told["Subject"])
        assert "unsafe at home" in text(told) and leaked(told) == []
        await eventually(lambda: [m for m in inbox.coordinator if "unsafe at home" in text(m)])
        shown = json.loads((await acli(layout, "group", "show", str(group["id"]), "--json")).stdout)
        assert shown["status"] == "closed"
