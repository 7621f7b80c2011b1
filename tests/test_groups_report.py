"""Groups in the program report: messages per member by handle and the mentor reply time in groups,
on a scripted group (real relay, real SMTP, injected clock), matched against hand-computed values in
`report --json`, the CSV, the text and the console's /report page."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta

from relay.clock import FixedClock
from tests.archive_support import START
from tests.consolekit import add_moderator, serving, session
from tests.support import Layout, Sink, acli, send, simple_message
from tests.test_groups import PEOPLE, make_group

NOW = START + timedelta(days=8)
BY_HANDLE = {p["handle"]: p for p in PEOPLE}


async def test_report_shows_each_groups_messages_per_member_and_mentor_reply_times(layout: Layout,
                                                                                   sink: Sink) -> None:
    layout.write()
    clock = FixedClock(START)
    async with serving(layout, clock):
        await add_moderator(layout, "ana", "stem")
        group = await asyncio.to_thread(make_group, layout)

        async def write(hours: float, handle: str, to: str, subject: str) -> None:
            clock.advance(START + timedelta(hours=hours) - clock.now())
            person = BY_HANDLE[handle]
            alias = group["alias"] if to == "group" else group["private"][to]
            code, reply = await send(layout.smtp_port, simple_message(person["email"], alias, subject, "Words."),
                                     person["email"], alias)
            assert code == 250, reply

        await write(0, "Maple", "group", "Hello")  # answered by Oak's message to the group after 5 h
        await write(2, "Birch", "group", "Hi")  # answered by the same after 3 h
        await write(5, "Oak", "group", "Welcome")
        await write(6, "Cedar", "Oak", "A question")  # privately to the mentor: answered after 54 h
        await write(7, "Maple", "Birch", "Psst")  # mentee to mentee: no mentor owes an answer
        await write(30, "Oak", "Maple", "For you")  # privately to Maple: does not answer Cedar
        await write(60, "Oak", "Cedar", "Answer")
        await write(61, "Birch", "group", "Thanks")  # never answered, its 48 hours are over by NOW
        clock.advance(NOW - clock.now())
        async with session(layout, "ana") as client:
            page = (await client.get("/report?program=stem")).text
        name = f"group_{group['id']}"
        assert f"{name}.member_Maple" in page and f"{name}.reply_time.median_hours" in page

    result = await acli(layout, "report", "--program", "stem", "--json", "--now", NOW.isoformat())
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["pairs"]["total"] == 0 and figures["messages"]["total"] == 0  # pairs' figures: pairs only
    # mentee messages owed an answer: Hello, Hi, A question, Thanks; answered after 5, 3 and 54 hours;
    # median 5, p90 5 + 0.8 * 49; two within 48 h of the four, all four due
    replies = {"mentee_messages": 4, "answered": 3, "median_hours": 5.0, "p90_hours": 44.2,
               "answered_within_48h": 2, "share_within_48h": 0.5}
    assert figures["groups"] == {"total": 1, "messages": 8, "reply_time": replies, "items": [{
        "id": group["id"], "kind": "group", "name": "Robotics", "status": "active", "messages": 8,
        "by_member": [{"handle": "Oak", "role": "mentor", "messages": 3},
                      {"handle": "Maple", "role": "mentee", "messages": 2},
                      {"handle": "Birch", "role": "mentee", "messages": 2},
                      {"handle": "Cedar", "role": "mentee", "messages": 1}],
        "reply_time": replies}]}
    assert all(p["email"] not in result.stdout and p["name"] not in result.stdout for p in PEOPLE)

    table = list(csv.DictReader(io.StringIO((await acli(layout, "report", "--program", "stem", "--csv", "--now",
                                                        NOW.isoformat())).stdout)))
    values = {(row["section"], row["figure"]): row["value"] for row in table}
    assert values[("groups", f"group_{group['id']}.member_Oak")] == "3"
    assert values[("groups", "reply_time.p90_hours")] == "44.2"

    text = (await acli(layout, "report", "--program", "stem", "--now", NOW.isoformat())).stdout
    assert "groups: 1, 8 messages; mentor reply time: 3 of 4 mentee messages answered; median 5.0 h" in text
    assert f"group {group['id']} Robotics (active): 8 messages" in text
    assert "by member: Oak (mentor) 3, Maple (mentee) 2, Birch (mentee) 2, Cedar (mentee) 1" in text
