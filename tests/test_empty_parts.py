"""An empty HTML part is ordinary mail (a phone's empty alternative): it is read as having no text, never refused.
And mail that cannot be read whole is still read for its text: help@ mail reaches staff (a refusal to a child
writing for help is the worst outcome), a stranger's disclosure still pages the lead."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from relay.clock import FixedClock
from relay.config import load_settings
from relay.service import Relay
from tests.documentkit import kerned_page, text_pdf
from tests.safeguarding_kit import Inboxes, leaks, use_shipped_policy
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    REPO,
    Layout,
    Sink,
    acreate_pair,
    eventually,
    nothing_queued,
    send,
)

DISCLOSURE = "My stepdad hits me and I don't want to go home."
STRANGER = "maple.friend@school.example"


def empty_html(sender: str, to: str, body: str, name: str = "eh") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: please help\r\nMessage-ID: <{name}@mail.example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
            f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\r\n--b--\r\n").encode()


async def started(layout: Layout, shipped: bool = True, **overrides: object) -> Relay:
    """On the shipped youth-strict policy (`shipped`), else the layout's own (which delivers partner mail)."""
    layout.overrides.update(overrides)
    layout.write()
    if shipped:
        use_shipped_policy(layout)
    relay = Relay(load_settings(layout.config), clock=FixedClock(datetime.now(UTC)))
    await relay.start()
    return relay


async def test_help_mail_with_an_empty_html_alternative_reaches_the_coordinator_and_the_lead(
        layout: Layout, sink: Sink) -> None:
    relay = await started(layout)
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        raw = empty_html(MENTEE["email"], f"help@{DOMAIN}", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], f"help@{DOMAIN}")
        assert code == 250, reply
        [told] = await eventually(lambda: inbox.lead)
        assert str(told["Subject"]).startswith("URGENT") and leaks(told) == []
        await eventually(lambda: len(inbox.coordinator) == 1)
    finally:
        await relay.stop()


async def test_the_corpus_message_with_empty_parts_to_help_reaches_the_coordinator(layout: Layout, sink: Sink) -> None:
    """tests/data/corpus/malformed/000.eml: a multipart/mixed of empty text/plain and text/html parts."""
    relay = await started(layout)
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        body = (REPO / "tests" / "data" / "corpus" / "malformed" / "000.eml").read_bytes()
        raw = f"From: {MENTEE['email']}\r\nSubject: need help\r\nMessage-ID: <c0@mail.example.org>\r\n".encode() + body
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], f"help@{DOMAIN}")
        assert code == 250, reply
        await eventually(lambda: len(inbox.coordinator) == 1)
    finally:
        await relay.stop()


async def test_partner_mail_with_an_empty_html_part_is_delivered(layout: Layout, sink: Sink) -> None:
    relay = await started(layout, shipped=False)
    try:
        pair = await acreate_pair(layout)
        raw = empty_html(MENTEE["email"], pair["mentor_alias"], "See you on Thursday!")
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
        assert code == 250, reply
        [delivered] = await eventually(lambda: Inboxes(sink).mentor)
        assert "See you on Thursday!" in delivered.as_string()
    finally:
        await relay.stop()


async def test_a_strangers_disclosure_with_an_empty_html_alternative_pages_the_lead(layout: Layout,
                                                                                   sink: Sink) -> None:
    relay = await started(layout)
    try:
        pair = await acreate_pair(layout)
        raw = empty_html(STRANGER, pair["mentor_alias"], "its Maple, my phone was taken. " + DISCLOSURE)
        code, _ = await send(layout.smtp_port, raw, STRANGER, pair["mentor_alias"])
        assert code == 550
        [alert] = await eventually(lambda: Inboxes(sink).lead)
        assert "UNVERIFIED" in str(alert["Subject"]) and leaks(alert) == []
    finally:
        await relay.stop()


def with_long_pdf(sender: str, to: str, body: str) -> bytes:
    """A disclosure with a 150-page PDF attached: reading the PDF's text takes seconds of CPU, over a small
    budget; the rest of the message is read in milliseconds."""
    data = text_pdf(*(kerned_page([" ".join(f"word{page * 45 + i + w}" for w in range(14)) for i in range(45)])
                      for page in range(150)), compress=True)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, "please read"
    message["Message-ID"] = "<long-pdf@mail.example.org>"
    message.set_content(body)
    message.add_attachment(data, maintype="application", subtype="pdf", filename="homework.pdf")
    return message.as_bytes()


async def test_help_mail_over_its_cpu_budget_is_read_for_its_text_and_reaches_the_lead(layout: Layout,
                                                                                       sink: Sink) -> None:
    relay = await started(layout, workers=1, limits={"message_cpu_seconds": 0.5})
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        raw = with_long_pdf(MENTEE["email"], f"help@{DOMAIN}", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], f"help@{DOMAIN}")
        assert code == 250, reply
        [told] = await eventually(lambda: inbox.lead, timeout=30)
        assert str(told["Subject"]).startswith("URGENT") and DISCLOSURE in told.as_string()
        await eventually(lambda: len(inbox.coordinator) == 1 and nothing_queued(layout), timeout=30)
    finally:
        await relay.stop()


async def test_a_strangers_disclosure_over_its_cpu_budget_is_read_for_its_text(layout: Layout, sink: Sink) -> None:
    relay = await started(layout, workers=1, limits={"message_cpu_seconds": 0.5})
    try:
        pair = await acreate_pair(layout)
        raw = with_long_pdf(STRANGER, pair["mentor_alias"], f"its {MENTEE['name']}, my phone was taken. {DISCLOSURE}")
        code, _ = await send(layout.smtp_port, raw, STRANGER, pair["mentor_alias"])
        assert code == 550
        [alert] = await eventually(lambda: Inboxes(sink).lead, timeout=30)
        assert "UNVERIFIED" in str(alert["Subject"]) and leaks(alert) == []
        assert "my phone was taken" in alert.as_string() and MENTOR["email"] not in alert.as_string()
    finally:
        await relay.stop()
