"""People the sender knows through the program who are not in the conversation (bystanders: the members of the
sender's other pairs and groups) are named in partner and group mail: a mentor names one pair mentee to another or
to his group, a group mentee names his pair mentor to the group or a group member to his pair mentor. Their real
names and addresses must not reach anyone: they are replaced by their handles in the subject, the text, the HTML
and attachments, whatever the policy, on delivery and on a moderator's release. A bystander whose name is an
ordinary word leaves ordinary text alone, as a member's does. Also: the matcher that keeps many people cheap
(relay/anonymize/names.SievedMatcher) finds what one expression over all of them finds."""

from __future__ import annotations

import asyncio
import html
import json
import random
from email.message import EmailMessage
from typing import Any

import pytest

from relay.anonymize.names import NameMatcher, Person, SievedMatcher
from tests.consolekit import serving
from tests.safeguarding_kit import use_shipped_policy
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    Received,
    Sink,
    acli,
    cli,
    create_pair,
    eventually,
    nothing_queued,
    send,
)

OAK, MAPLE = MENTOR, MENTEE  # José Müller mentors Jane Doe in a pair, and mentors the group
BIRCH = {"email": "ravi.patel@school.example.com", "name": "Ravi Patel", "handle": "Birch"}  # group mentee
CEDAR = {"email": "lena.svensson@post.example.se", "name": "Lena Svensson", "handle": "Cedar"}  # group mentee
ZOE = {"email": "zoe.quinlan@home.example.org", "name": "Zoe Quinlan", "handle": "Willow"}  # Oak's other mentee
AMARA = {"email": "amara.okafor@firm.example.com", "name": "Amara Okafor", "handle": "Elm"}  # Birch's pair mentor
WILL = {"email": "will.carter@home.example.net", "name": "Will Carter", "handle": "Rowan"}  # a name that is a word
SECRETS = ("Zoe Quinlan", "Quinlan", "zoe.quinlan", "Amara Okafor", "Okafor", "amara.okafor", "Lena Svensson",
           "Svensson", "lena.svensson", "Will Carter", "Carter", "will.carter")


def enrol(layout: Layout, *extra_pairs: tuple[dict[str, str], dict[str, str]]) -> dict[str, Any]:
    """Pairs Oak-Maple, Oak-Zoe and Amara-Birch, the group Robotics (Oak, Maple, Birch, Cedar), and any
    `extra_pairs`; returns the aliases."""
    made = {"oak_maple": create_pair(layout, OAK, MAPLE), "oak_zoe": create_pair(layout, OAK, ZOE),
            "amara_birch": create_pair(layout, AMARA, BIRCH)}
    for n, (mentor, mentee) in enumerate(extra_pairs):
        made[f"extra{n}"] = create_pair(layout, mentor, mentee)
    created = cli(layout, "group", "create", "--program", "stem", "--name", "Robotics", "--json")
    assert created.returncode == 0, created.stderr
    group = json.loads(created.stdout)
    for role, person in (("mentor", OAK), ("mentee", MAPLE), ("mentee", BIRCH), ("mentee", CEDAR)):
        added = cli(layout, "group", "add", str(group["id"]), "--role", role, "--email", person["email"],
                    "--name", person["name"], "--handle", person["handle"], "--json")
        assert added.returncode == 0, added.stderr
    made["group"] = group["alias"]
    return made


def letter(sender: dict[str, str], to: str, subject: str, text: str) -> bytes:
    """`text` as the plain part, again in HTML with a mailto: link to the first address it names, and as an
    attached text file."""
    message = EmailMessage()
    message["From"] = f"{sender['name']} <{sender['email']}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    first = next((word.strip(".,()<>") for word in text.split() if "@" in word), "")
    message.add_alternative(f"<html><body><p>{html.escape(text)}</p><p><a href=\"mailto:{first}\">write</a></p>"
                            "</body></html>", subtype="html")
    message.add_attachment(text.encode(), maintype="text", subtype="plain", filename="notes.txt")
    return message.as_bytes()


def seen(received: Received) -> str:
    """Everything the recipient can read: the raw message and every decoded text part, attachments included."""
    out = [str(received.message)]
    for part in received.message.walk():
        if part.get_content_maintype() == "text":
            out.append(part.get_content())
    return "\n".join(out)


def leaks(copies: list[Received]) -> list[tuple[str, str]]:
    return [(r.rcpt_tos[0], secret) for r in copies for secret in SECRETS if secret.lower() in seen(r).lower()]


async def write(layout: Layout, sender: dict[str, str], to: str, subject: str, text: str) -> str:
    code, reply = await send(layout.smtp_port, letter(sender, to, subject, text), sender["email"], to)
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]


MAILS = [  # (sender, conversation, subject, text, handles the recipients must read)
    (OAK, "group", "[1] Zoe Quinlan's robot",
     "Hi all! My other mentee Zoe Quinlan (zoe.quinlan@home.example.org) built a line follower; Zoe says hi.",
     ("Willow",)),
    (BIRCH, "group", "[2] Robot news",
     "My mentor Amara Okafor (amara.okafor@firm.example.com) works at an engineering firm and can help.", ("Elm",)),
    (OAK, "oak_maple", "[3] Meet Zoe Quinlan",
     "Jane, my other mentee Zoe Quinlan <zoe.quinlan@home.example.org> is doing the same course as you.",
     ("Willow",)),
    (BIRCH, "amara_birch", "[4] My group",
     "Lena Svensson (lena.svensson@post.example.se) from my robotics group is great at this.", ("Cedar",)),
]


def assert_handles(copies: list[Received]) -> None:
    """Each mail's copies name the bystanders by their handles."""
    for _, _, subject, _, handles in MAILS:
        mine = [r for r in copies if str(r.message["Subject"]).startswith(subject[:3])]
        assert mine and all(handle in seen(r) for r in mine for handle in handles), (subject, handles)


def address(made: dict[str, Any], conversation: str, sender: dict[str, str]) -> str:
    if conversation == "group":
        return str(made["group"])
    pair = made[conversation]
    return str(pair["mentee_alias"] if sender is OAK or sender is AMARA else pair["mentor_alias"])


@pytest.mark.parametrize("policy", ["adult-professional", "supervised"])
async def test_bystanders_are_replaced_in_group_and_pair_mail(layout: Layout, sink: Sink, policy: str) -> None:
    use_shipped_policy(layout, policy)
    async with serving(layout):
        made = await asyncio.to_thread(enrol, layout)
        if policy == "supervised":  # the first messages of a conversation are held: released out of the way
            for sender, conversation, *_ in MAILS:
                for n in range(3):
                    await write(layout, sender, address(made, conversation, sender), f"warm-up {n}", "Hello")
        await eventually(lambda: nothing_queued(layout), timeout=30)
        start = len(sink.received)
        for sender, conversation, subject, text, _ in MAILS:
            await write(layout, sender, address(made, conversation, sender), subject, text)
        await eventually(lambda: nothing_queued(layout), timeout=30)
        copies = [r for r in sink.received[start:] if "Auto-Submitted" not in r.message]
        recipients = sorted(r.rcpt_tos[0] for r in copies)
        # the group's other three members twice, Maple, Amara: everything was delivered, nothing held
        assert recipients == sorted([MAPLE["email"], BIRCH["email"], CEDAR["email"], OAK["email"], MAPLE["email"],
                                     CEDAR["email"], MAPLE["email"], AMARA["email"]]), recipients
        assert not leaks(copies), f"names of the program's other participants delivered: {leaks(copies)}"
        assert_handles(copies)


async def test_a_moderators_release_replaces_bystanders_too(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout, "supervised")  # a conversation's first messages are held for a moderator
    async with serving(layout):
        made = await asyncio.to_thread(enrol, layout)
        held = [await write(layout, sender, address(made, conversation, sender), subject, text)
                for sender, conversation, subject, text, _ in MAILS]
        await eventually(lambda: nothing_queued(layout), timeout=30)
        listed = {item["id"] for item in json.loads((await acli(layout, "held", "list", "--json")).stdout)}
        assert set(held) <= listed
        start = len(sink.received)
        for queue_id in held:
            released = await acli(layout, "held", "release", queue_id)
            assert released.returncode == 0, released.stderr
        await eventually(lambda: nothing_queued(layout), timeout=30)
        copies = [r for r in sink.received[start:] if "Auto-Submitted" not in r.message]
        assert len(copies) == 8, [r.rcpt_tos for r in copies]
        assert not leaks(copies), f"released copies name the program's other participants: {leaks(copies)}"
        assert_handles(copies)


async def test_a_bystander_named_like_a_word_leaves_ordinary_text_alone(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout, "adult-professional")
    async with serving(layout):
        made = await asyncio.to_thread(enrol, layout, (OAK, WILL))
        text = ("Will Carter finished his robot last week. I will send you the plan tomorrow; will you check it? "
                "Write to will.carter@home.example.net if you like.")
        await write(layout, OAK, made["oak_maple"]["mentee_alias"], "Plans", text)
        await eventually(lambda: nothing_queued(layout), timeout=30)
        (copy,) = [r for r in sink.received if r.rcpt_tos[0] == MAPLE["email"] and "Auto-Submitted" not in r.message]
        body = copy.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert body.startswith("Rowan finished his robot last week. I will send you the plan tomorrow; "
                               "will you check it? Write to "), body
        assert not leaks([copy]), leaks([copy])


# ---------------------------------------------------------------------------------------------- the sieve

POOL = [
    Person("theo.vlindqvist@mentor-mail.example", "Théodora Vlindqvist", ("Teddy",)),
    Person("siobhan+list@uni.example.ie", "Siobhan O'Brien-Ivanova"),
    Person("jose.mueller@uni.example.net", "José Müller"),
    Person("j.mueller@post.example.de", "Jürgen Mueller"),
    Person("xiaoming@school.example.cn", "王小明"),
    Person("vera@mail.example.ru", "Вера Иванова"),
    Person("ahmad@mail.example.jo", "أحمد الحسن"),
    Person("like@mail.example.com", "Li Ke"),
    Person("12345@numbers.example.org", "J. R. Doe"),
    Person("will.rose@garden.example.org", "Will Rose", ("Billy",)),
    Person("am.stjohn@x.example", "Anne-Marie St.John"),
    Person("mjwp@comic.example", "Mary Jane Watson Parker"),
    Person("r2d2@droids.example", "R2D2 Unit"),
    Person("zoe.quinlan@home.example.org", "Zoe Quinlan"),
    Person("hope@kind.example", "Hope May"),
    Person("paris.lima@travel.example", "Paris Lima"),
    Person("yuki@jp.example", "山田 由紀"),
    Person("dmitri@ru.example", "Дмитрий Петров"),
    Person("o.brien@ie.example", "Ciarán Ó Briain"),
]
FILLER = ("i will send it tomorrow", "Hope you are well", "we visited Paris", "see you, ", "thanks ", "\n> ",
          "the robot works", "May I ask", "call me", "my name is", "ok", "123", "_", ".", "-", " ", "\n", "Dear ",
          "Best,\n", "我是", "，", "от ", "ل", "x", "LOUD TEXT ")


def forms(person: Person) -> list[str]:
    """Ways a text may show the person: addresses, runs of the name, logins, prefixes, cases, glued forms."""
    words, (local, domain) = person.name.split(), person.email.split("@")
    return [person.email, person.email.upper(), person.email.replace("@", "\n> @"), local, f"{local}+tag@{domain}",
            person.name, person.name.upper(), person.name.lower(), "_".join(words), ".".join(words).lower(),
            "".join(words).lower(), (words[0][:1] + words[-1]).lower(), f"{words[-1]}, {words[0]}", *words,
            *(word[:k] for word in words for k in (4, 5)), *person.nicknames, words[0] + "99", "x" + words[-1],
            words[-1] + "у", words[-1][:-1] + "ой", "Hi " + words[0].lower()]


def test_the_sieve_finds_what_one_expression_over_everyone_finds() -> None:
    chance = random.Random(7)
    for _ in range(25):
        people = chance.sample(POOL, chance.randint(1, len(POOL)))
        whole, sieved = NameMatcher(people), SievedMatcher(people)
        for _ in range(40):
            pieces = [chance.choice(forms(chance.choice(POOL))) if chance.random() < 0.5 else chance.choice(FILLER)
                      for _ in range(chance.randint(1, 25))]
            text = "".join(chance.choice(("", " ", "\n", ", ")) + piece for piece in pieces)
            assert sieved.find(text, every_form=True) == whole.find(text, every_form=True), text
            assert set(whole.find(text)) <= set(sieved.find(text)), text  # (the same, on all these)


def test_the_sieve_looks_only_for_the_people_a_text_may_name() -> None:
    def tag(n: int) -> str:  # a word of its own for each person: aa, ab, ...
        return chr(97 + n // 26) + chr(97 + n % 26)

    people = [Person(f"person.{tag(n)}@school.example", f"Given{tag(n)} Family{tag(n)}") for n in range(300)]
    sieved = SievedMatcher([*people, Person("zoe.quinlan@home.example.org", "Zoe Quinlan")])
    chosen = sieved.people_in("my other mentee zoe built a robot with familyah")
    assert {7, 300} <= set(chosen) and len(chosen) < 10, chosen  # (and a few whose address ends in "ee", "er")
    assert [hit.person for hit in sieved.find("Zoe and Familyah say hi")] == [300, 7]
