"""Held group mail in the review console and on the command line: the queue and the held page name the
group and its members by handle (never a real name or address), a release from the console delivers one
copy to every other member, a rejection tells the sender and nobody else; `held list --json`, `held show`
and the JSON API say the same. Through real SMTP and real HTTP, with a real sink as the smarthost."""

from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import func, select

from relay.store.schema import outbound
from tests.consolekit import add_moderator, base_url, csrf_of, prepare, serving, session, token_for
from tests.support import MENTEE, Layout, Sink, acli, eventually, rows_now, send, simple_message
from tests.test_groups import PEOPLE, assert_no_identity, make_group

OTHERS = [p for p in PEOPLE if p["email"] != MENTEE["email"]]


async def mentee_writes_to_group(layout: Layout, group: dict[str, Any], subject: str, body: str) -> str:
    """Jane (Maple) writes to the group's alias; returns the queue id of the held message."""
    raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", group["alias"], subject, body,
                         message_id=f"<{subject.replace(' ', '.')}@client.example>")
    code, reply = await send(layout.smtp_port, raw, MENTEE["email"], group["alias"])
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]


def identities_in(text: str, people: list[dict[str, str]]) -> list[str]:
    return [secret for p in people for secret in (p["email"], p["name"]) if secret in text]


def by_rcpt(sink: Sink, address: str) -> list[EmailMessage]:
    return [r.message for r in sink.received if r.rcpt_tos == [address]]


def relay_copies(layout: Layout, message_id: str) -> int:
    ((count,),) = rows_now(layout, select(func.count()).select_from(outbound).where(
        outbound.c.message_id == message_id, outbound.c.kind == "relay"))
    return int(count)


async def test_held_group_mail_in_the_console_and_cli_names_the_group_and_handles(layout: Layout,
                                                                                   sink: Sink) -> None:
    prepare(layout)  # every message is held; moderators@ is alerted
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        group = await asyncio.to_thread(make_group, layout)
        held_id = await mentee_writes_to_group(layout, group, "plans for friday", "Hi all, a secret plan!")
        async with session(layout, "ana") as client:
            queue = await client.get("/held")
            assert queue.status_code == 200
            assert "Maple → the group <b>Robotics</b>" in queue.text
            assert "Members (4): Oak (mentor), Maple (mentee), Birch (mentee), Cedar (mentee)" in queue.text
            assert identities_in(queue.text, PEOPLE) == []
            page = await client.get(f"/held/{held_id}")
            assert page.status_code == 200
            assert "From <b>Maple</b> (mentee) to the group <b>Robotics</b>" in page.text
            assert "Members (4): Oak (mentor), Maple (mentee), Birch (mentee), Cedar (mentee)" in page.text
            assert identities_in(page.text, OTHERS) == []  # the other members: handles only
            preview = page.text.split("As it would be delivered", 1)[1]
            assert "Oak's copy" in preview and "Maple (Robotics)" in preview
            assert identities_in(preview, PEOPLE) == []
        listed = await acli(layout, "held", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        (item,) = json.loads(listed.stdout)
        assert item["conversation"] == {"kind": "group", "id": group["id"], "name": "Robotics", "status": "active",
                                        "members": [{"handle": p["handle"], "role": p["role"]} for p in PEOPLE]}
        assert (item["sender"], item["recipient"]) == ({"handle": "Maple", "role": "mentee"}, None)
        assert identities_in(listed.stdout, PEOPLE) == []
        plain = await acli(layout, "held", "list")
        assert f"group={group['id']} (Robotics)" in plain.stdout and "Maple -> the group" in plain.stdout
        shown = await acli(layout, "held", "show", held_id)
        assert shown.returncode == 0, shown.stderr
        assert f"group={group['id']} (Robotics), program stem" in shown.stdout
        assert "members: Oak (mentor), Maple (mentee), Birch (mentee), Cedar (mentee)" in shown.stdout
        assert identities_in(shown.stdout, PEOPLE) == []
        token = await token_for(layout, "ana")
        async with httpx.AsyncClient(base_url=base_url(layout), timeout=30,
                                     headers={"authorization": f"Bearer {token}"}) as api:
            detail = (await api.get(f"/api/held/{held_id}")).json()
            assert detail["conversation"]["name"] == "Robotics" and detail["preview"]["for"] == "Oak"
            assert identities_in(json.dumps(detail["preview"]), PEOPLE) == []
            assert [i["conversation"]["kind"] for i in (await api.get("/api/held")).json()] == ["group"]


async def test_a_group_release_from_the_console_reaches_each_other_member_once(layout: Layout,
                                                                               sink: Sink) -> None:
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        group = await asyncio.to_thread(make_group, layout)
        released = await mentee_writes_to_group(layout, group, "hello all", "Hi all, how was the match?")
        rejected = await mentee_writes_to_group(layout, group, "gossip", "Did you hear about our teacher?")
        await sink.wait_for(4)  # for each: the sender's notice and the moderators' alert
        async with session(layout, "ana") as client:
            token = csrf_of((await client.get(f"/held/{released}")).text)
            first = await client.post(f"/held/{released}/release", data={"csrf_token": token})
            assert "on its way to every other member of the group" in first.text
            again = await client.post(f"/held/{released}/release", data={"csrf_token": token})
            assert "released already; nothing changed" in again.text
            no = await client.post(f"/held/{rejected}/reject", data={
                "csrf_token": token, "reason": "Please write about your own news, not about others."})
            assert "no member of the group gets it" in no.text
        for person in OTHERS:
            [copy] = await eventually(lambda p=person: by_rcpt(sink, p["email"]))
            assert copy.get_body(("plain",)).get_content().startswith("Hi all, how was the match?")  # type: ignore[union-attr]
            assert_no_identity(copy)
        notice = await eventually(lambda: [m for m in by_rcpt(sink, MENTEE["email"])
                                           if "not delivered" in m["Subject"]])
        assert "Please write about your own news, not about others." in notice[0].get_content()
        assert relay_copies(layout, released) == 3 and relay_copies(layout, rejected) == 0
        assert all("teacher" not in m.as_string() for p in OTHERS for m in by_rcpt(sink, p["email"]))
    again_cli = await acli(layout, "held", "release", released, "--json")
    assert json.loads(again_cli.stdout)["status"] == "already-released"
    assert relay_copies(layout, released) == 3


async def test_escalating_and_editing_a_held_group_message_in_the_console(layout: Layout, sink: Sink) -> None:
    """The console's other two actions on a group's item: escalate to the coordinator (who is told, by
    handle, with a link), and redact-and-release (every other member gets the edited text, once)."""
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        group = await asyncio.to_thread(make_group, layout)
        held_id = await mentee_writes_to_group(layout, group, "my number", "Call me on 0170 1234567 tonight!")
        async with session(layout, "ana") as client:
            token = csrf_of((await client.get(f"/held/{held_id}")).text)
            escalated = await client.post(f"/held/{held_id}/escalate", data={
                "csrf_token": token, "to": "coordinator", "note": "Phone number in a group"})
            assert escalated.status_code == 200 and "coordinator@school.example" in escalated.text
            [told] = await eventually(lambda: by_rcpt(sink, "coordinator@school.example"))
            assert "Maple to the group Robotics" in told.get_content()
            assert f"/held/{held_id}" in told.get_content() and identities_in(told.as_string(), PEOPLE) == []
            edited = await client.post(f"/held/{held_id}/redact", data={
                "csrf_token": token, "text": "Call me tonight! [number removed by the moderator]"})
            assert edited.status_code == 200 and "Released with your edit" in edited.text
        for person in OTHERS:
            [copy] = await eventually(lambda p=person: by_rcpt(sink, p["email"]))
            body = copy.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "[number removed by the moderator]" in body and "0170" not in body
        assert relay_copies(layout, held_id) == 3
