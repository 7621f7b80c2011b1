"""A mentee writes, the mentor replies, many rounds: delivered both ways, anonymised, threaded."""

from __future__ import annotations

import re

import pytest

from relay.service import Relay
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli_json,
    acreate_pair,
    eventually,
    send,
    simple_message,
)


@pytest.fixture
def layout(layout: Layout) -> Layout:
    """These tests run the relay as `serve` does by default: the message work in worker processes."""
    layout.overrides["workers"] = 2
    layout.write()
    return layout


async def test_conversation_threads_in_both_clients(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    mentor_alias, mentee_alias = pair["mentor_alias"], pair["mentee_alias"]
    port = layout.smtp_port

    # Round 1: the mentee writes to the mentor's alias from her own client.
    first_id = "<first.mentee@mail.example.org>"
    code, text = await send(port, simple_message(
        f"Jane Doe <{MENTEE['email']}>", mentor_alias, "Hello!", "Hi, I am Jane.", message_id=first_id,
    ), MENTEE["email"], mentor_alias)
    assert code == 250 and re.search(r"queued as \w+", text), text
    received = await sink.wait_for(1)
    to_mentor = received[0]
    assert to_mentor.rcpt_tos == [MENTOR["email"]]
    assert re.fullmatch(rf"bounce\+\w+\.[a-z2-7]{{16}}@{re.escape(DOMAIN)}", to_mentor.mail_from)
    message = to_mentor.message
    assert message["From"].addresses[0].addr_spec == mentee_alias
    assert message["From"].addresses[0].display_name == "Maple"
    assert message["Reply-To"].addresses[0].addr_spec == mentee_alias
    assert message["To"].addresses[0].addr_spec == mentor_alias
    assert message["Message-ID"].endswith(f"@{DOMAIN}>") and message["Message-ID"] != first_id
    assert message.get_content().strip() == "Hi, I am Maple."

    # Round 2: the mentor hits Reply in his client: it threads on the id *his* client received.
    reply_id = "<reply.mentor@uni.example.net>"
    code, _ = await send(port, simple_message(
        f"José Müller <{MENTOR['email']}>", mentee_alias, "Re: Hello!", "Welcome Jane!",
        message_id=reply_id, In_Reply_To=message["Message-ID"], References=message["Message-ID"],
    ), MENTOR["email"], mentee_alias)
    assert code == 250
    to_mentee = (await sink.wait_for(2))[1]
    assert to_mentee.rcpt_tos == [MENTEE["email"]]
    answer = to_mentee.message
    # The mentee's client knows only its own first id: that is what the reply must point to.
    assert answer["In-Reply-To"] == first_id
    assert answer["References"] == first_id
    assert answer["From"].addresses[0].addr_spec == mentor_alias
    assert answer.get_content().strip() == "Welcome Maple!"

    # Rounds 3..6: long References chains map both ways, ids nobody knows are dropped.
    chain_mentee = [first_id]        # ids the mentee's client knows, in thread order
    chain_mentor = [message["Message-ID"], reply_id]
    chain_mentee.append(answer["Message-ID"])
    for round_number in range(3, 7):
        from_mentee = round_number % 2 == 1
        own_id = f"<round{round_number}@client.example>"
        known = chain_mentee if from_mentee else chain_mentor
        sender = MENTEE if from_mentee else MENTOR
        rcpt = mentor_alias if from_mentee else mentee_alias
        raw = simple_message(
            f"{sender['name']} <{sender['email']}>", rcpt, "Re: Hello!", f"Round {round_number}",
            message_id=own_id, In_Reply_To=known[-1],
            References=" ".join(["<unknown@elsewhere.example>", *known]),
        )
        code, _ = await send(port, raw, sender["email"], rcpt)
        assert code == 250
        delivered = (await sink.wait_for(round_number))[round_number - 1].message
        other = chain_mentor if from_mentee else chain_mentee
        assert delivered["In-Reply-To"] == other[-1]
        assert delivered["References"].split() == other
        assert "elsewhere.example" not in str(delivered["References"])
        known.append(own_id)
        other.append(delivered["Message-ID"])

    # Everything is in the store: six messages, six deliveries, and each decision is an event.
    async def six_sent() -> list[object] | bool:
        sent = await acli_json(layout, "queue", "list", "--state", "sent", "--json")
        return len(sent) == 6 and sent

    assert len(await eventually(six_sent)) == 6
    decisions = await acli_json(layout, "events", "list", "--kind", "decision", "--json")
    assert [e["detail"]["decision"] for e in decisions] == ["deliver"] * 6


async def test_maildir_transport_delivers_to_local_folders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from relay.config import load_settings
    from tests.support import free_port

    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    running = Relay(load_settings(layout.config))
    await running.start()
    try:
        pair = await acreate_pair(layout)
        code, _ = await send(layout.smtp_port, simple_message(
            f"Jane Doe <{MENTEE['email']}>", pair["mentor_alias"], "Hi", "Hello from Jane Doe"),
            MENTEE["email"], pair["mentor_alias"])
        assert code == 250
        folder = layout.root / "maildir" / MENTOR["email"] / "new"
        await eventually(lambda: folder.is_dir() and any(folder.iterdir()))
        files = list(folder.iterdir())
        assert len(files) == 1
        text = files[0].read_bytes().decode()
        assert "Hello from Maple" in text and "Jane" not in text and MENTEE["email"] not in text
    finally:
        await running.stop()
