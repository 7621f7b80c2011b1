"""help@ never answers a robot into a loop: no confirmation to an automatic reply (RFC 3834), nor to an answer to
a confirmation sent minutes ago (a robot that sets no header), and at most three confirmations an hour to one
member's address; an automatic reply with a safeguarding sign pages the lead once an hour per member. A child's
own mail reaches the coordinator (and, when urgent, the lead) every time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.config import load_settings
from relay.service import Relay
from tests.safeguarding_kit import COORDINATOR, LEAD, Inboxes, use_shipped_policy
from tests.support import DOMAIN, MENTEE, Layout, Sink, acreate_pair, eventually, nothing_queued, send, simple_message

HELP = f"help@{DOMAIN}"
CHILD = f"{MENTEE['name']} <{MENTEE['email']}>"
DISCLOSURE = "My stepdad hits me and I don't want to go home."
# A child's own auto-reply with a sign in it (a helpline's name of a subject, "worried about self-harm", is none)
OUT_OF_OFFICE = "I am not checking my mail this week. I don't want to live anymore."


async def started(layout: Layout, clock: FixedClock) -> Relay:
    use_shipped_policy(layout)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    return relay


async def to_help(layout: Layout, subject: str, body: str, **headers: str) -> None:
    code, reply = await send(layout.smtp_port, simple_message(CHILD, HELP, subject, body, **headers), MENTEE["email"],
                             HELP)
    assert code == 250, reply


async def settled(layout: Layout) -> None:
    await eventually(lambda: nothing_queued(layout), timeout=20)


def confirmations(inbox: Inboxes) -> list:
    return [m for m in inbox.mentee if "reached" in str(m["Subject"])]


async def test_a_robot_answering_every_confirmation_stops_after_one_round(layout: Layout, sink: Sink) -> None:
    """A school helpdesk robot answers every mail with a new message, no Auto-Submitted, In-Reply-To set: its
    answer to the confirmation reaches the coordinator once, gets no confirmation, and the loop ends."""
    relay = await started(layout, FixedClock(datetime.now(UTC)))
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        await to_help(layout, "meetings", "Can we move our chats to Thursdays?")
        for _ in range(5):  # the robot answers whatever the child got that it has not answered yet
            await settled(layout)
            for notice in confirmations(inbox)[len(inbox.coordinator) - 1:]:
                await to_help(layout, f"Re: {notice['Subject']}", "Thank you, your message was received.",
                              In_Reply_To=str(notice["Message-ID"]))
        await settled(layout)
        assert (len(confirmations(inbox)), len(inbox.coordinator), len(inbox.lead)) == (1, 2, 0)
    finally:
        await relay.stop()


async def test_a_robot_that_does_not_thread_its_answers_gets_three_confirmations_an_hour(
        layout: Layout, sink: Sink) -> None:
    relay = await started(layout, FixedClock(datetime.now(UTC)))
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        await to_help(layout, "meetings", "Can we move our chats to Thursdays?")
        for _ in range(6):
            await settled(layout)
            if len(confirmations(inbox)) >= len(inbox.coordinator):
                await to_help(layout, "Your message", "Thank you, your message was received.")
        await settled(layout)
        assert (len(confirmations(inbox)), len(inbox.coordinator)) == (3, 4)
    finally:
        await relay.stop()


async def test_an_out_of_office_with_signs_pages_the_lead_once_an_hour_and_is_never_confirmed(
        layout: Layout, sink: Sink) -> None:
    clock = FixedClock(datetime(2026, 6, 1, 14, 0, tzinfo=UTC))
    relay = await started(layout, clock)
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        for _ in range(3):
            await to_help(layout, "Automatic reply: your message", OUT_OF_OFFICE, Auto_Submitted="auto-replied")
        await settled(layout)
        assert (len(inbox.lead), len(inbox.coordinator), len(inbox.mentee)) == (1, 3, 0)
        await to_help(layout, "please", DISCLOSURE)  # the child's own disclosure always pages
        await eventually(lambda: len(inbox.lead) == 2)
        clock.advance(timedelta(hours=1, minutes=1))
        await to_help(layout, "Automatic reply: your message", OUT_OF_OFFICE, Auto_Submitted="auto-replied")
        await settled(layout)
        assert (len(inbox.lead), len(inbox.coordinator), len(confirmations(inbox))) == (3, 5, 1)
    finally:
        await relay.stop()


async def test_a_childs_own_messages_reach_staff_every_time_and_three_an_hour_are_confirmed(
        layout: Layout, sink: Sink) -> None:
    clock = FixedClock(datetime(2026, 6, 1, 14, 0, tzinfo=UTC))
    relay = await started(layout, clock)
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        await to_help(layout, "meetings", "Can we move our chats to Thursdays?")
        await to_help(layout, "please", DISCLOSURE)
        await to_help(layout, "again", "He did it again tonight. " + DISCLOSURE)
        await settled(layout)
        assert (len(inbox.coordinator), len(inbox.lead), len(confirmations(inbox))) == (3, 2, 3)
        assert all(message.get("Auto-Submitted") == "auto-generated" for message in confirmations(inbox))
        await to_help(layout, "still", DISCLOSURE)  # a fourth within the hour: staff, lead, no confirmation
        await settled(layout)
        assert (len(inbox.coordinator), len(inbox.lead), len(confirmations(inbox))) == (4, 3, 3)
        clock.advance(timedelta(hours=1))
        await to_help(layout, "thanks", "Thank you for answering.")
        await settled(layout)
        assert (len(inbox.coordinator), len(inbox.lead), len(confirmations(inbox))) == (5, 3, 4)
        assert {r.rcpt_tos[0] for r in sink.received} == {COORDINATOR, LEAD, MENTEE["email"]}
    finally:
        await relay.stop()


async def test_mail_that_asks_for_no_automatic_answer_reaches_staff_unconfirmed(layout: Layout, sink: Sink) -> None:
    relay = await started(layout, FixedClock(datetime.now(UTC)))
    try:
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        await to_help(layout, "meetings", "Can we move our chats to Thursdays?", X_Auto_Response_Suppress="All")
        await settled(layout)
        assert (len(inbox.coordinator), len(inbox.mentee)) == (1, 0)
    finally:
        await relay.stop()
