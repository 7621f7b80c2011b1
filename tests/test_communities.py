"""Program communities end to end through real SMTP: a mentor writes to mentors@ and the other enrolled
mentors of their programs receive it (handles only, nobody's identity in any part), mentees likewise at
mentees@; strangers, the wrong side and programs without a community are refused with a clear 550."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from relay.config import load_settings
from relay.service import Relay
from relay.store.schema import members, messages, pairs
from tests.support import DOMAIN, Layout, Received, Sink, cli, eventually, nothing_queued, rows, send

OAK = {"email": "jose.muller@uni.example.net", "name": "José Müller", "handle": "Oak"}
ELM = {"email": "amara.okafor@firm.example.com", "name": "Amara Okafor", "handle": "Elm"}
PINE = {"email": "li.wei@lab.example.org", "name": "Li Wei", "handle": "Pine"}
FIR = {"email": "sofia.rossi@civic.example.it", "name": "Sofia Rossi", "handle": "Fir"}
ASH = {"email": "tom.baker@arts.example.co.uk", "name": "Tom Baker", "handle": "Ash"}
MAPLE = {"email": "jane.doe@mail.example.org", "name": "Jane Doe", "handle": "Maple"}
BIRCH = {"email": "ravi.patel@school.example.com", "name": "Ravi Patel", "handle": "Birch"}
CEDAR = {"email": "lena.svensson@post.example.se", "name": "Lena Svensson", "handle": "Cedar"}
HAZEL = {"email": "noor.haddad@civic.example.jo", "name": "Noor Haddad", "handle": "Hazel"}
YEW = {"email": "kim.lee@arts.example.kr", "name": "Kim Lee", "handle": "Yew"}
EVERYONE = [OAK, ELM, PINE, FIR, ASH, MAPLE, BIRCH, CEDAR, HAZEL, YEW]
STRANGER = "someone@elsewhere.example"
MENTORS, MENTEES = f"mentors@{DOMAIN}", f"mentees@{DOMAIN}"


def add_program(layout: Layout, program_id: str, name: str, community: dict[str, Any] | None) -> None:
    program: dict[str, Any] = {"id": program_id, "name": name, "coordinator": f"coordinator@{program_id}.example",
                               "policy": "adult-professional", "timezone": "America/New_York", "welcome": False}
    if community is not None:
        program["community"] = community
    (layout.root / "programs" / f"{program_id}.yaml").write_text(yaml.safe_dump(program))


def enable_stem(layout: Layout, community: dict[str, Any]) -> None:
    path = layout.root / "programs" / "stem.yaml"
    program = yaml.safe_load(path.read_text())
    program["community"] = community
    path.write_text(yaml.safe_dump(program))


def pair(layout: Layout, program: str, mentor: dict[str, str], mentee: dict[str, str]) -> dict[str, Any]:
    result = cli(layout, "pair", "create", "--program", program, "--mentor-email", mentor["email"],
                 "--mentor-name", mentor["name"], "--mentor-handle", mentor["handle"], "--mentee-email",
                 mentee["email"], "--mentee-name", mentee["name"], "--mentee-handle", mentee["handle"], "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


STEM = [OAK, ELM, PINE, MAPLE, BIRCH, CEDAR]
CIVIC = [FIR, ELM, HAZEL]


def letter(person: dict[str, str], to: str, subject: str, body: str) -> bytes:
    """Text and HTML, signed with the real name, quoting the identity of everybody in the sender's programs
    (mentors and mentees)."""
    known = STEM + CIVIC if person in CIVIC else STEM
    everyone = "; ".join(f"{p['name']} <{p['email']}>" for p in known)
    message = EmailMessage()
    message["From"] = f"{person['name']} <{person['email']}>"
    message["To"] = to
    message["Cc"] = everyone
    message["Subject"] = subject
    message.set_content(f"{body}\n\nCopying {everyone}.\n-- \n{person['name']}\n")
    message.add_alternative(f"<html><body><p>{body}</p><p><a href=\"mailto:{ELM['email']}\">{ELM['name']}</a>"
                            f" and {MAPLE['name']}</p></body></html>", subtype="html")
    return message.as_bytes()


def assert_no_identity(message: EmailMessage) -> None:
    text = message.as_string()
    for person in EVERYONE:
        for secret in (person["email"], *[w for w in person["name"].split() if len(w) > 2]):
            assert secret not in text, f"{secret} leaked"
    for part in message.walk():
        if part.get_content_maintype() == "text":
            content = part.get_content()
            for person in EVERYONE:
                assert person["email"] not in content and person["name"] not in content


@pytest.fixture
async def communities(layout: Layout) -> AsyncIterator[Relay]:
    """stem and civic open both communities; arts has none. Oak and Elm mentor in stem and civic."""
    enable_stem(layout, {"mentors": True, "mentees": True})
    add_program(layout, "civic", "Civic mentoring", {"mentors": True, "mentees": False})
    add_program(layout, "arts", "Arts mentoring", None)
    for program, mentor, mentee in (("stem", OAK, MAPLE), ("stem", ELM, BIRCH), ("stem", PINE, CEDAR),
                                    ("civic", FIR, HAZEL), ("civic", ELM, {**HAZEL, "handle": "Hazel"}),
                                    ("arts", ASH, YEW)):
        await asyncio.to_thread(pair, layout, program, mentor, mentee)
    running = Relay(load_settings(layout.config))
    await running.start()
    yield running
    await running.stop()


def by_rcpt(received: list[Received]) -> dict[str, EmailMessage]:
    return {r.rcpt_tos[0]: r.message for r in received}


async def test_community_reaches_the_other_mentors_of_the_senders_programs(communities: Relay, layout: Layout,
                                                                           sink: Sink) -> None:
    port = layout.smtp_port
    # Elm mentors in stem and civic; Oak only in stem: Oak reaches Elm once and Pine, nobody in civic.
    code, reply = await send(port, letter(OAK, MENTORS, "Tips for a first call", "Hello fellow mentors, José."),
                             OAK["email"], MENTORS)
    assert code == 250, reply
    first = by_rcpt(await sink.wait_for(2))
    assert set(first) == {ELM["email"], PINE["email"]}
    for message in first.values():
        assert_no_identity(message)
        assert message["From"].addresses[0].display_name == "Oak (STEM mentoring mentors)"
        assert message["Reply-To"].addresses[0].addr_spec == f"mentors.stem@{DOMAIN}"
        plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Hello fellow mentors, Oak." in plain and "Copying Oak" in plain and "Maple" in plain

    # Elm writes: stem (Oak, Pine) and civic (Fir) — each person once, archived in each community.
    code, reply = await send(port, letter(ELM, MENTORS, "Re: Tips", "Thanks, Amara here."), ELM["email"], MENTORS)
    assert code == 250, reply
    second = by_rcpt((await sink.wait_for(5))[2:])
    assert set(second) == {OAK["email"], PINE["email"], FIR["email"]}
    for message in second.values():
        assert_no_identity(message)
    assert {m["From"].addresses[0].display_name for m in second.values()} == {
        "Elm (STEM mentoring mentors)", "Elm (Civic mentoring mentors)"}

    # A mentee writes to mentees@: the other stem mentees only (civic has no mentees' community).
    code, reply = await send(port, letter(MAPLE, MENTEES, "Study group?", "Anyone up for it? Jane"),
                             MAPLE["email"], MENTEES)
    assert code == 250, reply
    third = by_rcpt((await sink.wait_for(7))[5:])
    assert set(third) == {BIRCH["email"], CEDAR["email"]}
    for message in third.values():
        assert_no_identity(message)
        assert "Anyone up for it? Maple" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    # Refused, each with a clear text: a stranger, a mentee at mentors@, a mentor of a program without one,
    # a mentor at mentees@ of programs where only the mentors' community is open... (Fir: civic has none).
    refusals = [(STRANGER, MENTORS, "Only participants"), (MAPLE["email"], MENTORS, "not enrolled as a mentor"),
                (ASH["email"], MENTORS, "not enrolled as a mentor"),
                (FIR["email"], MENTEES, "not enrolled as a mentee")]
    for sender, rcpt, words in refusals:
        code, reply = await send(port, letter(OAK, rcpt, "hi", "hello"), sender, rcpt)
        assert code == 550 and "5.7.1" in reply and words in reply, reply
    # A member's From: forged by someone else's envelope is refused too (the From: must be the sender).
    code, reply = await send(port, letter({**OAK, "email": STRANGER}, MENTORS, "hi", "x"), OAK["email"], MENTORS)
    assert code == 550, reply
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting (not a nap)
    assert len(sink.received) == 7

    # The record: each message archived once per community, senders are community members.
    kinds = await rows(layout, select(pairs.c.kind, pairs.c.alias).where(pairs.c.kind == "community"))
    assert sorted(k.alias for k in kinds) == ["mentees.stem", "mentors.civic", "mentors.stem"]
    archived = await rows(layout, select(messages.c.pair_id, messages.c.recipient_id)
                          .select_from(messages.join(pairs, pairs.c.id == messages.c.pair_id))
                          .where(pairs.c.kind == "community"))
    assert len(archived) == 4 and all(a.recipient_id is None for a in archived)


async def test_community_members_follow_enrolment(communities: Relay, layout: Layout, sink: Sink) -> None:
    """A mentor whose pair closes leaves the community (the row stays, marked); a newly enrolled one joins."""
    port = layout.smtp_port
    code, reply = await send(port, letter(OAK, MENTORS, "Hello", "Hello all."), OAK["email"], MENTORS)
    assert code == 250, reply
    assert set(by_rcpt(await sink.wait_for(2))) == {ELM["email"], PINE["email"]}
    pine_pairs = await rows(layout, select(members.c.pair_id).select_from(
        members.join(pairs, pairs.c.id == members.c.pair_id)).where(
        members.c.email_key == PINE["email"], pairs.c.kind == "pair"))
    closed = await asyncio.to_thread(cli, layout, "pair", "close", str(pine_pairs[0].pair_id))
    assert closed.returncode == 0, closed.stderr
    newcomer = {"email": "ada.obi@new.example.ng", "name": "Ada Obi", "handle": "Alder"}
    await asyncio.to_thread(pair, layout, "stem", newcomer, {"email": "m@new.example", "name": "Mo Ng",
                                                              "handle": "Moss"})
    code, reply = await send(port, letter(OAK, MENTORS, "Hello again", "Welcome, newcomers."), OAK["email"], MENTORS)
    assert code == 250, reply
    def copies_of_again() -> dict[str, EmailMessage] | None:  # the close also sent farewells and a notice
        found = by_rcpt([r for r in sink.received if "Hello again" in str(r.message["Subject"])])
        return found if len(found) >= 2 else None

    assert set(await eventually(copies_of_again)) == {ELM["email"], newcomer["email"]}
    # Pine, no longer enrolled, may not write either; the row stays for the record, marked as left.
    code, reply = await send(port, letter(PINE, MENTORS, "Still here?", "x"), PINE["email"], MENTORS)
    assert code == 550, reply
    left = await rows(layout, select(members.c.left_at).select_from(
        members.join(pairs, pairs.c.id == members.c.pair_id)).where(
        pairs.c.kind == "community", members.c.email_key == PINE["email"]))
    assert len(left) == 1 and left[0].left_at is not None
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting (not a nap)
    community = [r for r in sink.received if "notices@" not in str(r.message["From"])]
    assert len(community) == 4  # nothing more reached the community
    farewells = {r.rcpt_tos[0] for r in sink.received if "goodbye" in str(r.message["Subject"])}
    assert PINE["email"] in farewells  # the closed pair's mentor was told, not left to a bounce
