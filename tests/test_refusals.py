"""Only the enrolled partner may write to an alias; everything else is refused and recorded."""

from __future__ import annotations

import pytest

from relay.service import Relay
from tests.support import DOMAIN, MENTEE, MENTOR, Layout, Sink, acli, acli_json, acreate_pair, send, simple_message

STRANGER = "stranger@evil.example"


async def refusals(layout: Layout) -> list[dict]:  # type: ignore[type-arg]
    return await acli_json(layout, "events", "list", "--kind", "refused", "--json")


async def assert_nothing_delivered(layout: Layout, sink: Sink, pair: dict) -> None:  # type: ignore[type-arg]
    """A normal message sent afterwards arrives alone: nothing refused slipped through before it."""
    code, _ = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], "ok", "fine"),
                         MENTEE["email"], pair["mentor_alias"])
    assert code == 250
    received = await sink.wait_for(1)
    assert len(received) == 1 and received[0].message["Subject"] == "ok"


@pytest.mark.parametrize(
    ("case", "expected_code", "expected_status", "words", "reason"),
    [
        ("unknown_alias", 550, "5.1.1", "No such", "unknown_alias"),
        ("foreign_domain", 550, "5.7.1", "Relaying denied", "foreign_domain"),
        ("stranger", 550, "5.7.1", "only from the person", "stranger"),
        ("forged_envelope_only", 550, "5.7.1", "only from the person", "stranger"),
        ("partner_writes_own_alias", 550, "5.7.1", "only from the person", "stranger"),
        ("null_sender", 550, "5.7.1", "sender address is required", "no_sender"),
        ("no_from_header", 550, "5.7.1", "no recognisable sender", "no_sender"),
        ("loop_message_id", 550, "5.4.6", "loop", "loop"),
        ("loop_x_loop", 550, "5.4.6", "loop", "loop"),
    ],
)
async def test_refused_and_recorded(
    relay: Relay, layout: Layout, sink: Sink,
    case: str, expected_code: int, expected_status: str, words: str, reason: str,
) -> None:
    pair = await acreate_pair(layout)
    alias = pair["mentor_alias"]
    mail_from, rcpt = MENTEE["email"], alias
    raw = simple_message(MENTEE["email"], alias, "hello", "hi")
    if case == "unknown_alias":
        rcpt = f"nobody.abcdef@{DOMAIN}"
    elif case == "foreign_domain":
        rcpt = "someone@gmail.example"
    elif case == "stranger":
        mail_from, raw = STRANGER, simple_message(STRANGER, alias, "hello", "hi")
    elif case == "forged_envelope_only":  # right envelope, wrong author
        raw = simple_message(STRANGER, alias, "hello", "hi")
    elif case == "partner_writes_own_alias":  # the mentee writes to her own alias
        rcpt = pair["mentee_alias"]
    elif case == "null_sender":
        mail_from = ""
    elif case == "no_from_header":
        raw = b"To: " + alias.encode() + b"\r\nSubject: hi\r\nMessage-ID: <x@client.example>\r\n\r\nhello\r\n"
    elif case == "loop_message_id":
        raw = simple_message(MENTEE["email"], alias, "hello", "hi", message_id=f"<abc.def@{DOMAIN}>")
    elif case == "loop_x_loop":
        raw = simple_message(MENTEE["email"], alias, "hello", "hi", X_Loop=DOMAIN)
    code, text = await send(layout.smtp_port, raw, mail_from, rcpt)
    assert (code, text.split()[0]) == (expected_code, expected_status), text
    assert words.lower() in text.lower()
    recorded = await refusals(layout)
    assert [r["detail"]["reason"] for r in recorded] == [reason]
    assert recorded[0]["detail"]["reply"].startswith(f"{expected_code} {expected_status}")
    await assert_nothing_delivered(layout, sink, pair)


async def test_closed_pair_gets_a_polite_ending(relay: Relay, layout: Layout, sink: Sink) -> None:
    """A member's mail to a closed pair is archived and answered with the ended note, as for an ended pair
    (tests/test_endings.py has the farewells); it is no refusal, and a stranger is still refused."""
    pair = await acreate_pair(layout)
    closed = await acli(layout, "pair", "close", str(pair["id"]))
    assert closed.returncode == 0, closed.stderr
    await sink.wait_for(3)  # both farewells and the coordinator's notice
    code, text = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], "hi", "hi"),
                            MENTEE["email"], pair["mentor_alias"])
    assert code == 250, text
    note = (await sink.wait_for(4))[3]
    assert note.rcpt_tos == [MENTEE["email"]] and str(note.message["Subject"]) == "Your conversation with Oak has ended"
    assert await refusals(layout) == []
    code, text = await send(layout.smtp_port, simple_message(STRANGER, pair["mentor_alias"], "hi", "hi"),
                            STRANGER, pair["mentor_alias"])
    assert code == 550 and "only from the person it was set up for" in text
    assert [r["detail"]["reason"] for r in await refusals(layout)] == ["stranger"]


async def test_oversize_message_gets_552(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    big = simple_message(MENTEE["email"], pair["mentor_alias"], "big", "start") + (b"y" * 76 + b"\r\n") * 40_000
    code, text = await send(layout.smtp_port, big, MENTEE["email"], pair["mentor_alias"])
    assert code == 552, text
    await assert_nothing_delivered(layout, sink, pair)


async def test_two_conversations_in_one_message_are_refused(relay: Relay, layout: Layout, sink: Sink) -> None:
    first = await acreate_pair(layout)
    second = await acreate_pair(
        layout,
        {"email": "mentor2@uni.example.net", "name": "Ada Byron", "handle": "Birch"},
        {"email": MENTEE["email"], "name": MENTEE["name"], "handle": "Willow"},
    )
    code, text = await send(
        layout.smtp_port, simple_message(MENTEE["email"], first["mentor_alias"], "both", "to both"),
        MENTEE["email"], [first["mentor_alias"], second["mentor_alias"]],
    )
    assert code == 550 and "5.5.3" in text and "separately" in text
    assert [r["detail"]["reason"] for r in await refusals(layout)] == ["two_pairs"]
    await assert_nothing_delivered(layout, sink, first)


async def test_same_alias_twice_is_one_delivery(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    alias = pair["mentor_alias"]
    code, _ = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, "twice", "hi"),
                         MENTEE["email"], [alias, alias.upper()])
    assert code == 250
    received = await sink.wait_for(1)
    assert received[0].rcpt_tos == [MENTOR["email"]]
    await assert_nothing_delivered_after(layout, sink, pair)


async def assert_nothing_delivered_after(layout: Layout, sink: Sink, pair: dict) -> None:  # type: ignore[type-arg]
    code, _ = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], "ok", "fine"),
                         MENTEE["email"], pair["mentor_alias"])
    assert code == 250
    received = await sink.wait_for(2)
    assert [r.message["Subject"] for r in received] == ["twice", "ok"]
