"""Groups end to end through real SMTP: one mentor and three mentees write to the group alias and to
one another privately; nobody's real name or address reaches anyone else; strangers are refused;
threads map per recipient; a hold holds the message for everyone and a release delivers every copy once."""

from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from typing import Any

from relay.service import Relay
from tests.consolekit import add_moderator
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Received,
    Sink,
    acli,
    acli_json,
    cli,
    eventually,
    nothing_queued,
    send,
    simple_message,
)
from tests.test_moderation import HOLD_ALL, MODERATOR, use_policy

PEOPLE = [
    {"role": "mentor", **MENTOR},  # José Müller, Oak
    {"role": "mentee", **MENTEE},  # Jane Doe, Maple
    {"role": "mentee", "email": "ravi.patel@school.example.com", "name": "Ravi Patel", "handle": "Birch"},
    {"role": "mentee", "email": "lena.svensson@post.example.se", "name": "Lena Svensson", "handle": "Cedar"},
]
STRANGER = "someone@elsewhere.example"


def make_group(layout: Layout, name: str = "Robotics") -> dict[str, Any]:
    created = cli(layout, "group", "create", "--program", "stem", "--name", name, "--json")
    assert created.returncode == 0, created.stderr
    group = json.loads(created.stdout)
    group["members"] = {}
    for person in PEOPLE:
        added = cli(layout, "group", "add", str(group["id"]), "--role", person["role"], "--email", person["email"],
                    "--name", person["name"], "--handle", person["handle"], "--language", "en", "--json")
        assert added.returncode == 0, added.stderr
        data = json.loads(added.stdout)
        assert data["role"] == person["role"] and data["handle"] == person["handle"]
        group["members"][person["handle"]] = data["id"]
    shown = json.loads(cli(layout, "group", "show", str(group["id"]), "--json").stdout)
    group["private"] = {m["handle"]: m["alias"] for m in shown["members"]}
    return group


def rich_message(person: dict[str, str], to: str, subject: str, body: str, **headers: str) -> bytes:
    """Text and HTML, the sender signing with their real name and quoting the others' identities."""
    everyone = "; ".join(f"{p['name']} <{p['email']}>" for p in PEOPLE)
    message = EmailMessage()
    message["From"] = f"{person['name']} <{person['email']}>"
    message["To"] = to
    message["Cc"] = everyone
    message["Subject"] = subject
    for key, value in headers.items():
        message[key.replace("_", "-")] = value
    message.set_content(f"{body}\n\nCopying {everyone}.\n-- \n{person['name']}\n")
    message.add_alternative(f"<html><body><p>{body}</p><p><a href=\"mailto:{PEOPLE[2]['email']}\">"
                            f"{PEOPLE[2]['name']}</a> and {PEOPLE[3]['name']}</p></body></html>", subtype="html")
    return message.as_bytes()


def copies_for(received: list[Received], start: int) -> dict[str, EmailMessage]:
    return {r.rcpt_tos[0]: r.message for r in received[start:]}


def assert_no_identity(message: EmailMessage) -> None:
    text = message.as_string()
    for person in PEOPLE:
        for secret in (person["email"], *[w for w in person["name"].split() if len(w) > 2]):
            assert secret not in text, f"{secret} leaked"
    for part in message.walk():
        if part.get_content_maintype() == "text":
            content = part.get_content()
            for person in PEOPLE:
                assert person["email"] not in content and person["name"] not in content


async def test_group_mail_reaches_every_other_member_anonymously(relay: Relay, layout: Layout, sink: Sink) -> None:
    group = await asyncio.to_thread(make_group, layout)
    alias, port = group["alias"], layout.smtp_port
    assert alias.endswith(f"@{DOMAIN}") and alias.startswith("robotics.")

    # The mentor writes to the group: three mentees get one copy each.
    code, reply = await send(port, rich_message(PEOPLE[0], alias, "Kick-off", "Welcome all, I am José.",
                                                Message_ID="<kickoff@uni.example.net>"), MENTOR["email"], alias)
    assert code == 250, reply
    first = copies_for(await sink.wait_for(3), 0)
    assert set(first) == {p["email"] for p in PEOPLE[1:]}
    for message in first.values():
        assert_no_identity(message)
        assert message["From"].addresses[0].display_name == "Oak (Robotics)"
        assert message["From"].addresses[0].addr_spec == group["private"]["Oak"]
        assert message["Reply-To"].addresses[0].addr_spec == alias
        assert message["To"].addresses[0].addr_spec == alias
        assert message["Cc"] is None
        plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Welcome all, I am Oak." in plain and "Copying Oak" in plain and "Birch" in plain
        assert f"to write to Oak alone, write to {group['private']['Oak']}" in plain
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert group["private"]["Birch"] in html and "Cedar" in html and group["private"]["Oak"] in html
    ids = {rcpt: m["Message-ID"] for rcpt, m in first.items()}
    assert len(set(ids.values())) == 3

    # Birch (a mentee) hits Reply: it goes to the group; everyone else, the mentor too, gets it, threaded
    # on the id *their* client knows (the mentor's own original id; the other mentees' own copies' ids).
    birch = PEOPLE[2]
    code, reply = await send(port, rich_message(birch, alias, "Re: Kick-off", "Thanks! Ravi here.",
                                                Message_ID="<birch1@school.example.com>",
                                                In_Reply_To=ids[birch["email"]], References=ids[birch["email"]]),
                             birch["email"], alias)
    assert code == 250, reply
    second = copies_for(await sink.wait_for(6), 3)
    assert set(second) == {MENTOR["email"], MENTEE["email"], PEOPLE[3]["email"]}
    assert second[MENTOR["email"]]["In-Reply-To"] == "<kickoff@uni.example.net>"
    for rcpt in (MENTEE["email"], PEOPLE[3]["email"]):
        assert second[rcpt]["In-Reply-To"] == ids[rcpt] and second[rcpt]["References"] == ids[rcpt]
    for message in second.values():
        assert_no_identity(message)
        assert message["From"].addresses[0].display_name == "Birch (Robotics)"

    # A private word: Maple answers Oak alone at the address in the footer (and From) of her copy.
    oak_private = group["private"]["Oak"]
    ask = simple_message(f"Jane Doe <{MENTEE['email']}>", oak_private, "Just you",
                         "Can I ask you something alone? Jane", In_Reply_To=ids[MENTEE["email"]])
    code, reply = await send(port, ask, MENTEE["email"], oak_private)
    assert code == 250, reply
    (private,) = (await sink.wait_for(7))[6:]
    assert private.rcpt_tos == [MENTOR["email"]]
    assert private.message["In-Reply-To"] == "<kickoff@uni.example.net>"
    assert "Can I ask you something alone? Maple" in private.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert_no_identity(private.message)

    # Strangers: the group alias and a private alias refuse anyone who is not a member (and a member
    # writing to their own private alias); each attempt is recorded.
    for rcpt, sender in ((alias, STRANGER), (oak_private, STRANGER), (oak_private, MENTOR["email"])):
        code, reply = await send(port, simple_message(sender, rcpt, "hi", "hello"), sender, rcpt)
        assert code == 550 and "5.7.1" in reply, reply
    refused = await acli_json(layout, "events", "list", "--kind", "refused", "--json")
    assert [e["detail"]["reason"] for e in refused] == ["stranger"] * 3
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting (not a nap)
    assert len(sink.received) == 7

    # The archive holds each message once; the queue has one copy per recipient.
    listed = await acli_json(layout, "group", "list", "--json")
    assert [(g["id"], g["messages"], len(g["members"])) for g in listed] == [(group["id"], 3, 4)]
    async def seven_sent() -> list[object] | bool:
        s = await acli_json(layout, "queue", "list", "--state", "sent", "--json")
        return s and len(s) == 7 and s

    sent = await eventually(seven_sent)
    assert len(sent) == 7


async def test_group_hold_is_released_once_for_everyone(relay: Relay, layout: Layout, sink: Sink) -> None:
    use_policy(layout, HOLD_ALL)
    group = await asyncio.to_thread(make_group, layout)
    alias = group["alias"]
    code, reply = await send(layout.smtp_port, simple_message(f"Jane Doe <{MENTEE['email']}>", alias, "hello",
                                                              "Hi all!"), MENTEE["email"], alias)
    assert code == 250, reply
    queue_id = reply.rsplit(" ", 1)[-1]
    received = await sink.wait_for(2)  # the sender's notice and the moderator's
    assert {r.rcpt_tos[0] for r in received} == {MENTEE["email"], MODERATOR}
    held = await acli_json(layout, "held", "list", "--json")
    assert [i["id"] for i in held] == [queue_id]
    await add_moderator(layout, "ana", "stem")  # the command line decides as an existing console account
    first = await acli(layout, "held", "release", queue_id, "--moderator", "ana")
    assert first.returncode == 0, first.stderr
    again = await acli(layout, "held", "release", queue_id, "--moderator", "ben", "--json")
    assert json.loads(again.stdout)["status"] == "already-released"
    delivered = await sink.wait_for(5)
    copies = [r for r in delivered if r.rcpt_tos[0] not in (MENTEE["email"], MODERATOR)]
    assert sorted(r.rcpt_tos[0] for r in copies) == sorted(p["email"] for p in PEOPLE if p is not PEOPLE[1])
    for r in copies:
        assert r.message.get_body(("plain",)).get_content().startswith("Hi all!")  # type: ignore[union-attr]
        assert_no_identity(r.message)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all that was queued has arrived
    assert len(sink.received) == 5


def add(layout: Layout, group_id: int, role: str, email: str, name: str, handle: str, *extra: str) -> tuple[int, str]:
    result = cli(layout, "group", "add", str(group_id), "--role", role, "--email", email, "--name", name,
                 "--handle", handle, *extra)
    return result.returncode, result.stdout + result.stderr


def test_group_commands_keep_a_group_sane(layout: Layout) -> None:
    from tests.support import create_pair

    pair = create_pair(layout)  # Oak (José) and Maple (Jane) as a pair of the program
    group_id = json.loads(cli(layout, "group", "create", "--program", "stem", "--name", "Robotics",
                              "--json").stdout)["id"]
    assert group_id != pair["id"]
    # Jane keeps her handle in the group: same person, same program.
    assert add(layout, group_id, "mentee", MENTEE["email"], MENTEE["name"], "Maple")[0] == 0
    # Someone else may not take a handle of the program; nobody joins twice; two mentors at most.
    code, text = add(layout, group_id, "mentee", "x@school.example.com", "Xavier Ng", "Oak")
    assert code == 1 and "'Oak' is already used in program 'stem'" in text
    code, text = add(layout, group_id, "mentee", MENTEE["email"].upper(), MENTEE["name"], "Sprout")
    assert code == 1 and "already a member of group" in text
    for index in (1, 2):
        assert add(layout, group_id, "mentor", f"m{index}@uni.example.net", f"Mentor Person{index}",
                   f"Willow{index}")[0] == 0
    code, text = add(layout, group_id, "mentor", "m3@uni.example.net", "Mentor Three", "Willow3")
    assert code == 1 and "2 mentors already" in text
    code, text = add(layout, group_id, "mentee", "y@school.example.com", "Yara Lee", "Fern", "--language", "not a tag")
    assert code == 2 and "'not a tag' is not a language tag" in text
    code, text = add(layout, group_id, "mentee", "y@school.example.com", "Yara Lee", "Yara")
    assert code == 1 and "real name" in text
    # The pair is untouched; `pair list` does not show groups, `group list` shows no pairs.
    assert [p["id"] for p in json.loads(cli(layout, "pair", "list", "--json").stdout)] == [pair["id"]]
    (listed,) = json.loads(cli(layout, "group", "list", "--program", "stem", "--json").stdout)
    assert [m["handle"] for m in listed["members"]] == ["Maple", "Willow1", "Willow2"]
    assert cli(layout, "pair", "show", str(group_id)).returncode == 1
    assert cli(layout, "group", "show", str(pair["id"])).returncode == 1
    # Closing: recorded with its reason; a closed group takes no members.
    closed = cli(layout, "group", "close", str(group_id), "--reason", "term ended", "--json")
    assert closed.returncode == 0 and json.loads(closed.stdout)["changed"] is True
    code, text = add(layout, group_id, "mentee", "z@school.example.com", "Zoe Park", "Fern")
    assert code == 1 and "is closed" in text
    shown = json.loads(cli(layout, "group", "show", str(group_id), "--json").stdout)
    assert shown["status"] == "closed" and [e["kind"] for e in shown["events"]][-2:] == ["group_closed", "farewell"]


async def test_a_member_name_the_scrub_leaves_holds_group_mail(relay: Relay, layout: Layout, sink: Sink) -> None:
    """Pierre Paris is a member who neither sends nor is addressed alone: "talk to Paris" reads as the place
    to the scrub, so the identity rule (defence in depth) must check him too, and a policy that holds on it
    holds the message for everyone."""
    use_policy(layout, "rules:\n  identity:\n    action: hold\n")
    group = await asyncio.to_thread(make_group, layout)
    code, text = await asyncio.to_thread(add, layout, group["id"], "mentee", "pierre.p@maison.example",
                                         "Pierre Paris", "Aspen")
    assert code == 0, text
    alias = group["alias"]
    code, reply = await send(layout.smtp_port, simple_message(
        f"Jane Doe <{MENTEE['email']}>", alias, "Trip", "I will talk to Paris about the trip next week."),
        MENTEE["email"], alias)
    assert code == 250, reply
    queue_id = reply.rsplit(" ", 1)[-1]
    (item,) = await acli_json(layout, "held", "list", "--json")
    assert item["id"] == queue_id
    assert any(r.get("rule") == "identity" and r.get("kind") == "partner_name_word" and r.get("match") == "Paris"
               for r in item["reasons"]), item["reasons"]
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all that was queued has arrived
    members = {p["email"] for p in PEOPLE} | {"pierre.p@maison.example"}
    assert not [r for r in sink.received if r.rcpt_tos[0] in members - {MENTEE["email"]}]
