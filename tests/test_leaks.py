"""No identity leak (invariant 2): mail written by real clients arrives with neither member's real
address nor real name anywhere: not in a header, not in any text or HTML part, whatever the encoding,
not in an attachment's name, not in an attached message, not in a calendar invitation.
"""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from urllib.parse import unquote

import pytest

from relay.service import Relay
from tests import mailclients
from tests.mailclients import Person
from tests.support import Layout, Received, Sink, acreate_pair, send

JOSE = Person("José Müller", "jose.mueller@uni.example.net")
JANE = Person("Jane Doe", "jane.doe@mail.example.org")
HANDLES = {JOSE.address: "Oak", JANE.address: "Maple"}


async def enrol(layout: Layout) -> dict:  # type: ignore[type-arg]
    return await acreate_pair(
        layout,
        {"email": JOSE.address, "name": JOSE.name, "handle": "Oak"},
        {"email": JANE.address, "name": JANE.name, "handle": "Maple"},
    )


def forbidden(people: list[Person]) -> list[re.Pattern[str]]:
    """Every written form of both identities that must not survive."""
    patterns = []
    for person in people:
        local, _, domain = person.address.partition("@")
        patterns.append(re.compile(rf"{re.escape(local)}(\+[^@\s]*)?@{re.escape(domain)}", re.I))
        patterns.append(re.compile(rf"\b{re.escape(local)}\b", re.I))  # even the bare local part
        for word in person.name.split():
            for form in {word, word.replace("é", "e").replace("ü", "u"), word.replace("ü", "ue")}:
                patterns.append(re.compile(rf"(?<!\w){re.escape(form)}(?!\w)", re.I))
    return patterns


def visible_texts(received: Received) -> list[str]:
    """Everything a recipient's client could show: raw bytes, decoded headers, decoded parts."""
    raw = received.raw
    texts = [raw.decode("latin-1"), raw.decode("utf-8", "replace")]
    message = received.message

    def walk(part: EmailMessage) -> None:
        for name, value in part.items():
            texts.append(f"{name}: {value}")
        filename = part.get_filename()
        if filename:
            texts.append(filename)
        if part.is_multipart():
            for child in part.iter_parts():
                walk(child)  # type: ignore[arg-type]
            if part.get_content_type() == "message/rfc822":
                walk(part.get_payload(0))  # type: ignore[arg-type]
            return
        if part.get_content_maintype() == "text":
            content = part.get_content()
            unfolded = re.sub(r"\r?\n[ \t]", "", content)
            texts.extend([content, html.unescape(content), unquote(html.unescape(content)), unfolded])

    walk(message)
    return texts


def assert_no_identity(received: Received) -> None:
    texts = visible_texts(received)
    for pattern in forbidden([JOSE, JANE]):
        for text in texts:
            match = pattern.search(text)
            if match is not None:
                context = text[max(0, match.start() - 80):match.end() + 80]
                raise AssertionError(f"{pattern.pattern!r} leaked: ...{context}...")


DIRECTIONS = [("mentee_to_mentor", JANE, JOSE), ("mentor_to_mentee", JOSE, JANE)]


@pytest.mark.parametrize("client", sorted(mailclients.CLIENTS))
@pytest.mark.parametrize(("direction", "sender", "partner"), DIRECTIONS, ids=[d[0] for d in DIRECTIONS])
async def test_client_reply_leaks_nothing(
    relay: Relay, layout: Layout, sink: Sink, client: str, direction: str, sender: Person, partner: Person,
) -> None:
    pair = await enrol(layout)
    to_alias = pair["mentor_alias"] if partner is JOSE else pair["mentee_alias"]
    raw = mailclients.CLIENTS[client](
        sender=sender, partner=partner, to_alias=to_alias, partner_handle=HANDLES[partner.address],
        subject=f"Plans for {partner.name.split()[0]}", in_reply_to=None, references=[],
        text=f"Thanks {partner.name}! Write to me at {sender.address} any time.",
    )
    # The leak is really there before the relay: else this test would pass whatever the relay did.
    assert any(partner.address in text for text in mailclients.decoded_text_parts(raw)), client
    code, text = await send(layout.smtp_port, raw, sender.address, to_alias)
    assert code == 250, text
    received = (await sink.wait_for(1))[0]
    assert_no_identity(received)
    delivered = received.message
    assert delivered["From"].addresses[0].display_name == HANDLES[sender.address]
    # The scrub replaced, it did not delete: the handles stand where the names stood.
    body = "\n".join(mailclients.decoded_text_parts(received.raw))
    assert HANDLES[partner.address] in body and HANDLES[sender.address] in body


@pytest.mark.parametrize("builder", ["forwarded_with_rfc822", "calendar_invite"])
async def test_attached_messages_and_invitations_leak_nothing(
    relay: Relay, layout: Layout, sink: Sink, builder: str,
) -> None:
    pair = await enrol(layout)
    kwargs = {"sender": JANE, "partner": JOSE, "to_alias": pair["mentor_alias"], "subject": "Our meeting"}
    if builder == "forwarded_with_rfc822":
        kwargs["text"] = "Forwarding what you sent me, José Müller."
    raw = getattr(mailclients, builder)(**kwargs)
    code, text = await send(layout.smtp_port, raw, JANE.address, pair["mentor_alias"])
    assert code == 250, text
    received = (await sink.wait_for(1))[0]
    assert_no_identity(received)
    if builder == "calendar_invite":
        calendar = [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]
        assert len(calendar) == 1 and "ORGANIZER" in calendar[0].get_content()


async def test_threading_headers_reveal_no_provider_host(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await enrol(layout)
    raw = mailclients.gmail_reply(
        sender=JANE, partner=JOSE, to_alias=pair["mentor_alias"], partner_handle="Oak", subject="Hi",
        in_reply_to="<CAxyz@mail.gmail.com>", references=["<CAabc@mail.gmail.com>", "<CAxyz@mail.gmail.com>"],
        text="Hello",
    )
    code, _ = await send(layout.smtp_port, raw, JANE.address, pair["mentor_alias"])
    assert code == 250
    delivered = (await sink.wait_for(1))[0]
    header_block = delivered.raw.split(b"\r\n\r\n", 1)[0].lower()
    assert b"gmail" not in header_block and b"in-reply-to" not in header_block  # unknown ids are dropped
    kept = {name.lower() for name in delivered.message}
    assert kept <= {"from", "reply-to", "to", "subject", "date", "message-id", "in-reply-to", "references",
                    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
                    "content-language", "x-loop"}


async def test_forwarded_bounce_report_keeps_its_fields_and_loses_the_address(
    relay: Relay, layout: Layout, sink: Sink,
) -> None:
    pair = await enrol(layout)
    crlf = "\r\n"
    raw = crlf.join([
        f"From: {JANE.name} <{JANE.address}>", f"To: {pair['mentor_alias']}", "Subject: this bounced",
        "Message-ID: <dsn-forward@mail.example.org>", "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"', "",
        "--b1", "Content-Type: text/plain", "", "My mail to you bounced, look:", "",
        "--b1", "Content-Type: message/delivery-status", "",
        "Reporting-MTA: dns; mx.mail.example.org", "",
        f"Final-Recipient: rfc822; {JOSE.address}", "Action: failed", "Status: 5.1.1", "",
        "--b1--", "",
    ]).encode()
    code, text = await send(layout.smtp_port, raw, JANE.address, pair["mentor_alias"])
    assert code == 250, text
    received = (await sink.wait_for(1))[0]
    assert_no_identity(received)
    report = received.raw.decode()
    assert "Action: failed" in report and "Status: 5.1.1" in report
    assert f"Final-Recipient: rfc822; {pair['mentor_alias']}" in report
