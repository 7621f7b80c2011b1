"""Bounces: signed per-message envelope senders; reports recorded, senders told, forgeries refused."""

from __future__ import annotations

import re

from relay.service import Relay
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Received,
    Sink,
    acli_json,
    acreate_pair,
    eventually,
    nothing_queued,
    send,
    simple_message,
)


def report(to_verp: str, final_recipient: str, action: str, status: str) -> bytes:
    crlf = "\r\n"
    return crlf.join([
        "From: Mail Delivery System <MAILER-DAEMON@mx.uni.example.net>", f"To: {to_verp}",
        "Subject: Undelivered Mail Returned to Sender", "Message-ID: <dsn-1@mx.uni.example.net>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"', "",
        "--r", "Content-Type: text/plain", "", f"Your message to {final_recipient} could not be delivered.", "",
        "--r", "Content-Type: message/delivery-status", "", "Reporting-MTA: dns; mx.uni.example.net", "",
        f"Final-Recipient: rfc822; {final_recipient}", f"Action: {action}", f"Status: {status}",
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown", "",
        "--r--", "",
    ]).encode()


async def deliver_one(layout: Layout, sink: Sink, pair: dict, subject: str) -> Received:  # type: ignore[type-arg]
    """The mentee writes `subject` to the mentor; the copy the smarthost got (found by recipient and subject:
    the relay's own notices may arrive in between)."""
    code, _ = await send(layout.smtp_port, simple_message(
        MENTEE["email"], pair["mentor_alias"], subject, "hello"), MENTEE["email"], pair["mentor_alias"])
    assert code == 250
    return await eventually(lambda: next((r for r in sink.received if r.rcpt_tos == [MENTOR["email"]]
                                          and r.message["Subject"] == subject), None), timeout=15)


async def events(layout: Layout, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return await acli_json(layout, "events", "list", "--kind", kind, "--json")


async def test_a_hard_bounce_is_recorded_and_the_sender_told_without_the_address(
    relay: Relay, layout: Layout, sink: Sink,
) -> None:
    pair = await acreate_pair(layout)
    delivered = await deliver_one(layout, sink, pair, "Our first chat")
    assert re.fullmatch(rf"bounce\+\w+\.[a-z2-7]{{16}}@{re.escape(DOMAIN)}", delivered.mail_from)
    dsn = report(delivered.mail_from, MENTOR["email"], "failed", "5.1.1")
    code, text = await send(layout.smtp_port, dsn, "", delivered.mail_from)
    assert code == 250, text
    again, _ = await send(layout.smtp_port, dsn, "", delivered.mail_from)  # the provider retries its report
    assert again == 250
    notice = (await sink.wait_for(2))[1]
    assert notice.rcpt_tos == [MENTEE["email"]] and notice.message["Subject"] == "Not delivered to Oak"
    body = notice.raw.decode()
    assert MENTOR["email"] not in body and "5.1.1" not in body and "Our first chat" in body
    assert [e["detail"]["result"] for e in await events(layout, "bounce")] == ["hard", "hard"]
    assert (await acli_json(layout, "queue", "list", "--state", "bounced", "--json"))[0]["attempts"] == 1
    await eventually(lambda: len(sink.received) == 2)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # a second notice would be on its way by now
    assert len(sink.received) == 2  # the repeated report told nobody twice


async def test_forged_and_unsigned_bounce_addresses_are_refused(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    delivered = await deliver_one(layout, sink, pair, "hi")
    entry = delivered.mail_from.split("+", 1)[1].split(".", 1)[0]
    for address in (f"bounce+{entry}.aaaaaaaaaaaaaaaa@{DOMAIN}", f"bounce+{entry}@{DOMAIN}",
                    f"bounce+zzzzzzzzzzzz.{delivered.mail_from.split('.')[1][:16]}@{DOMAIN}"):
        code, text = await send(layout.smtp_port, report(address, MENTOR["email"], "failed", "5.1.1"), "", address)
        assert code == 550 and "No such bounce address" in text
    assert [e["detail"]["reason"] for e in await events(layout, "refused")] == ["forged_bounce"] * 3
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
    assert await events(layout, "bounce") == [] and len(sink.received) == 1


async def test_a_delay_report_is_only_recorded(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    delivered = await deliver_one(layout, sink, pair, "hi")
    code, _ = await send(layout.smtp_port, report(delivered.mail_from, MENTOR["email"], "delayed", "4.4.7"), "",
                         delivered.mail_from)
    assert code == 250
    assert [e["detail"]["result"] for e in await events(layout, "bounce")] == ["delay"]
    assert await acli_json(layout, "queue", "list", "--state", "bounced", "--json") == []


async def test_repeated_hard_bounces_mark_the_member_and_tell_the_coordinator(
    relay: Relay, layout: Layout, sink: Sink,
) -> None:
    pair = await acreate_pair(layout)
    for number in range(1, 5):
        delivered = await deliver_one(layout, sink, pair, f"message {number}")
        code, _ = await send(layout.smtp_port, report(delivered.mail_from, MENTOR["email"], "failed", "5.2.1"),
                             "", delivered.mail_from)
        assert code == 250
        await eventually(lambda n=number: len([r for r in sink.received if r.rcpt_tos == [MENTEE["email"]]]) == n)
    to_coordinator = await eventually(
        lambda: [r for r in sink.received if r.rcpt_tos == ["coordinator@school.example"]] or None)
    assert len(to_coordinator) == 1
    text = to_coordinator[0].message.get_content()
    assert "Oak (the mentor of pair 1)" in text and "3 times" in text and MENTOR["email"] not in text
    assert len(await events(layout, "undeliverable")) == 1
    # the coordinator's own mail bouncing says nothing about the participants
    code, _ = await send(layout.smtp_port, report(to_coordinator[0].mail_from, "coordinator@school.example",
                                                  "failed", "5.1.1"), "", to_coordinator[0].mail_from)
    assert code == 250
    assert [e["detail"]["member"] for e in await events(layout, "bounce")] == ["mentor"] * 4 + [None]
    assert len(await events(layout, "undeliverable")) == 1
