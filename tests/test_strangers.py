"""A stranger's mail to an alias, end to end on the shipped youth-strict policy: refused (550) and never
delivered, but read first, so that a child writing from another address ("my phone was taken") still reaches
the safeguarding lead, with an URGENT "UNVERIFIED SENDER" mail. Spam pages nobody; one sender pages the lead at
most once an hour per alias; strangers' refusals never close a session (a front-end MTA's connection carries
members' mail too), and only so many of their messages are read per session and per client address."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import select

from relay.clock import FixedClock
from relay.config import load_settings
from relay.service import Relay
from relay.store.events import list_events
from relay.store.outbound import list_outbound
from relay.store.schema import held, outbound
from tests.safeguarding_kit import COORDINATOR, LEAD, MODERATORS, Inboxes, leaks, text, use_shipped_policy
from tests.support import DOMAIN, MENTEE, MENTOR, Layout, Sink, acreate_pair, eventually, nothing_queued, rows, send
from tests.support import simple_message as message

STRANGER = "jane.school@school.example"
DISCLOSURE = "It's Maple, my phone was taken. My stepdad hits me and I don't want to go home."
REFUSED = "550 5.7.1 This mentoring alias accepts mail only from the person it was set up for."


class Ticker:
    """A monotonic clock (the SMTP limits') that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def started(layout: Layout, clock: FixedClock | None = None, monotonic: Ticker | None = None,
                  **smtp: Any) -> Relay:
    if smtp:  # written first: writing the layout puts its own policy back
        layout.overrides["smtp"] = smtp
        layout.write()
    use_shipped_policy(layout)
    relay = Relay(load_settings(layout.config), clock=clock or FixedClock(datetime.now(UTC)),
                  **({"monotonic": monotonic} if monotonic else {}))
    await relay.start()
    return relay


async def from_stranger(layout: Layout, pair: dict[str, Any], body: str, sender: str = STRANGER,
                        subject: str = "its me jane") -> tuple[int, str]:
    return await send(layout.smtp_port, message(f"Jane <{sender}>", pair["mentor_alias"], subject, body), sender,
                      pair["mentor_alias"])


async def refusals(relay: Relay) -> list[dict[str, Any]]:
    async with relay.engine.connect() as connection:
        return [e["detail"] for e in await list_events(connection, kind="refused")]


async def notices_queued(relay: Relay) -> list[Any]:
    async with relay.engine.connect() as connection:
        return list(await list_outbound(connection))


async def test_a_disclosure_from_another_address_is_refused_and_pages_the_lead(layout: Layout, sink: Sink) -> None:
    relay = await started(layout)
    try:
        pair = await acreate_pair(layout)
        # the members' real names in the text are scrubbed as in any copy; the stranger's own address is not
        code, reply = await from_stranger(layout, pair, f"{DISCLOSURE} Please tell {MENTOR['name']}.")
        assert (code, f"{code} {reply}") == (550, REFUSED)
        inbox = Inboxes(sink)
        [alert] = await eventually(lambda: inbox.lead, timeout=20)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert inbox.counts() == {"mentor": 0, "mentee": 0, "moderators": 0, "lead": 1, "coordinator": 0}
        subject = str(alert["Subject"])
        assert subject.startswith("URGENT") and "UNVERIFIED SENDER" in subject and f"pair {pair['id']}" in subject
        assert alert["Importance"] == "high"
        body = text(alert)
        for expected in (STRANGER, "Oak (mentor)", f"pair {pair['id']}", "NOT delivered to Oak", "(abuse, URGENT)",
                         "My stepdad hits me", "Please tell Oak.",
                         "Subject: its me Maple"):  # the mentee's real first name is scrubbed too
            assert expected in body, body
        assert leaks(alert) == [] and MENTOR["name"] not in body
        assert not await rows(layout, select(held))  # nothing held, nothing delivered
        [refusal] = await refusals(relay)
        assert (refusal["reason"], refusal["header_from"], refusal["signs"], refusal["alerted"]) == (
            "stranger", STRANGER, ["abuse"], [LEAD])
        async with relay.engine.connect() as connection:
            [recorded] = [e["detail"] for e in await list_events(connection, kind="stranger_alert")]
        assert recorded["to"] == [LEAD] and recorded["header_from"] == STRANGER
        assert "My stepdad hits me" in recorded["text"] and MENTOR["name"] not in recorded["text"]
    finally:
        await relay.stop()


async def test_spam_from_a_stranger_is_refused_and_pages_nobody(layout: Layout, sink: Sink) -> None:
    relay = await started(layout)
    try:
        pair = await acreate_pair(layout)
        code, reply = await from_stranger(layout, pair, "Cheap watches! Best prices, click here.", "sales@spam.example",
                                          subject="Offer")
        assert (code, f"{code} {reply}") == (550, REFUSED)
        # an alert is committed before the refusal is answered: none now means none ever
        assert await notices_queued(relay) == []
        [refusal] = await refusals(relay)
        assert refusal["reason"] == "stranger" and "signs" not in refusal and "alerted" not in refusal
        assert sink.received == []
    finally:
        await relay.stop()


async def test_one_stranger_pages_the_lead_once_an_hour_and_the_rest_is_recorded(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    relay = await started(layout, clock)
    try:
        pair = await acreate_pair(layout)
        for _ in range(10):  # one every five minutes: ten in 50 minutes
            code, reply = await from_stranger(layout, pair, DISCLOSURE)
            assert code == 550, reply
            clock.advance(timedelta(minutes=5))
        inbox = Inboxes(sink)
        await eventually(lambda: inbox.lead, timeout=20)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert len(inbox.lead) == 1
        found = await refusals(relay)
        assert len(found) == 10 and all(r["signs"] == ["abuse"] for r in found)
        assert [r["alerted"] for r in found].count([LEAD]) == 1
        assert sum(1 for r in found if r.get("not_alerted")) == 9
        # another sender is another alert; the same sender an hour after its alert is paged again
        assert (await from_stranger(layout, pair, DISCLOSURE, "aunt@family.example"))[0] == 550
        clock.advance(timedelta(minutes=10))  # 10:00, an hour after the first alert
        assert (await from_stranger(layout, pair, DISCLOSURE))[0] == 550
        await eventually(lambda: len(inbox.lead) == 3, timeout=20)
        assert "aunt@family.example" in text(inbox.lead[1]) and STRANGER in text(inbox.lead[2])
    finally:
        await relay.stop()


async def test_a_flood_from_many_addresses_pages_the_lead_at_most_three_times_an_hour(layout: Layout,
                                                                                      sink: Sink) -> None:
    """15 disclosures to one alias within the minute, each from another address (jane+N@): the conversation's 3
    pages an hour (a child may try from two addresses) go out, the last saying so; the other 12 are recorded
    (refused with not_alerted, and a stranger_alert_folded event each). An hour later the next page counts them."""
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    relay = await started(layout, clock)
    try:
        pair = await acreate_pair(layout)
        for n in range(15):
            assert (await from_stranger(layout, pair, DISCLOSURE, f"jane+{n}@school.example"))[0] == 550
        inbox = Inboxes(sink)
        await eventually(lambda: len(inbox.lead) >= 3, timeout=20)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert len(inbox.lead) == 3
        assert "This is the last such alert" in text(inbox.lead[2])
        assert not any("This is the last such alert" in text(mail) for mail in inbox.lead[:2])
        found = await refusals(relay)
        assert [bool(r["alerted"]) for r in found] == [True] * 3 + [False] * 12
        assert {r.get("not_alerted") for r in found[3:]} == {"this conversation's 3 alerts an hour already sent"}
        async with relay.engine.connect() as connection:
            folded = [e["detail"]["header_from"] for e in await list_events(connection, kind="stranger_alert_folded")]
        assert sorted(folded) == sorted(f"jane+{n}@school.example" for n in range(3, 15))
        clock.advance(timedelta(hours=1))  # a sender folded before is paged now: it was never told
        assert (await from_stranger(layout, pair, DISCLOSURE, "jane+14@school.example"))[0] == 550
        await eventually(lambda: len(inbox.lead) == 4, timeout=20)
        said = text(inbox.lead[3])
        assert "jane+14@school.example" in said and "since the last alert about it: 12." in said
    finally:
        await relay.stop()


async def test_two_relays_on_one_store_take_the_conversations_pages_once_each(layout: Layout) -> None:
    """The cap's claim (strangers.claim_page) from two engines on one database at once, 8 claims: 3 pages, each
    taken once; the fourth an hour after the first frees it again."""
    from relay.inbound.strangers import claim_page
    from relay.store.database import create_engine, transaction

    layout.write()
    pair = await acreate_pair(layout)
    url = load_settings(layout.config).database_url
    engines = [create_engine(url), create_engine(url)]
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    async def one(n: int, at: datetime) -> int | None:
        async with transaction(engines[n % 2]) as connection:
            page = await claim_page(connection, pair["id"], at)
            return None if page is None else page.slot

    try:
        taken = await asyncio.gather(*(one(n, now) for n in range(8)))
        assert sorted(slot for slot in taken if slot is not None) == [0, 1, 2] and taken.count(None) == 5
        assert await one(0, now + timedelta(minutes=59)) is None
        assert await one(1, now + timedelta(hours=1)) == 0
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_spoofed_member_address_is_held_and_the_lead_paged_as_for_the_member(layout: Layout,
                                                                                     sink: Sink) -> None:
    """The From: is the enrolled mentee's, the envelope sender is elsewhere and nothing is signed: no stranger
    (the enrolled address), but a sender check that fails. Under the shipped policy (`prefer`) the message is held
    as spoofing, and its disclosure pages the lead with the ordinary URGENT alert; nothing reaches the mentor."""
    relay = await started(layout)
    try:
        pair = await acreate_pair(layout)
        raw = message(f"{MENTEE['name']} <{MENTEE['email']}>", pair["mentor_alias"], "its me", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, "someone@elsewhere.example", pair["mentor_alias"])
        assert code == 250, reply
        inbox = Inboxes(sink)
        [alert] = await eventually(lambda: inbox.lead, timeout=20)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert str(alert["Subject"]).startswith("URGENT") and "UNVERIFIED SENDER" not in str(alert["Subject"])
        assert "sender_auth (spoofing)" in text(alert) and leaks(alert) == []
        assert inbox.mentor == [] and len(inbox.moderators) == 1
        [item] = await rows(layout, select(held))
        assert item.severity == "urgent" and item.state == "held"
        assert await refusals(relay) == []
    finally:
        await relay.stop()


async def test_a_flood_of_strangers_costs_a_member_on_the_same_front_end_connection_nothing(
        layout: Layout, sink: Sink) -> None:
    """As the documented Postfix front end does (deploy/postfix: every alias's mail relayed from 127.0.0.1, which
    is in per_ip_limits_exempt, over reused connections): 25 strangers' messages on one connection, then the
    mentee's own. Each stranger gets 550 and the session stays open (no 421); only the session's budget of
    reads (smtp.stranger_reads_per_session, 10) is read, the rest refused unread and recorded so; the mentee's
    message is taken."""
    relay = await started(layout)
    try:
        pair = await acreate_pair(layout)
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=layout.smtp_port, timeout=20, start_tls=False)
        await client.connect()

        async def one(sender: str, body: str) -> str:
            try:
                await client.mail(sender)
                await client.rcpt(pair["mentor_alias"])
                return str((await client.data(message(sender, pair["mentor_alias"], "hi", body))).code)
            except aiosmtplib.SMTPResponseException as exc:
                await client.rset()
                return f"{exc.code} {exc.message}"

        try:
            for n in range(25):
                assert await one(f"seller{n}@spam.example", "Cheap watches, best prices") == REFUSED
            assert await one(MENTEE["email"], "Hi Oak, here is my essay") == "250"
        finally:
            await client.quit()
        await sink.handler.wait_for(1, timeout=20)
        found = await refusals(relay)
        assert [r["reason"] for r in found] == ["stranger"] * 25
        assert [r.get("read") for r in found[:10]] == [None] * 10  # read (spam: no sign)
        assert {r.get("read") for r in found[10:]} == {
            "not read: this session's 10 reads of strangers' messages are used up"}
    finally:
        await relay.stop()


async def test_a_client_address_has_only_so_many_strangers_messages_read_a_minute(layout: Layout,
                                                                                  sink: Sink) -> None:
    """A client outside per_ip_limits_exempt, one connection per message: past
    smtp.stranger_reads_per_ip_per_minute reads in a minute its strangers' messages are refused unread (a flood
    cannot keep the workers busy); a minute later they are read again, and a disclosure pages the lead."""
    ticker = Ticker()
    relay = await started(layout, monotonic=ticker, per_ip_limits_exempt=[], stranger_reads_per_ip_per_minute=3)
    try:
        pair = await acreate_pair(layout)
        for n in range(3):
            assert (await from_stranger(layout, pair, "Cheap watches.", f"s{n}@spam.example"))[0] == 550
        code, reply = await from_stranger(layout, pair, DISCLOSURE)  # the fourth in the minute: not read
        assert (code, f"{code} {reply}") == (550, REFUSED)
        assert await notices_queued(relay) == []
        ticker.now += 61
        assert (await from_stranger(layout, pair, DISCLOSURE))[0] == 550
        inbox = Inboxes(sink)
        await eventually(lambda: inbox.lead, timeout=20)
        found = await refusals(relay)
        assert [r.get("read") for r in found] == [None] * 3 + [
            "not read: this client address's reads of strangers' messages in the last minute are used up", None]
        assert found[3].get("alerted") is None and found[4]["alerted"] == [LEAD]
    finally:
        await relay.stop()


async def test_a_disclosure_to_a_group_alias_from_a_stranger_pages_the_lead(layout: Layout, sink: Sink) -> None:
    from tests.support import acli

    relay = await started(layout)
    try:
        created = json.loads((await acli(layout, "group", "create", "--program", "stem", "--name", "Robotics",
                                         "--json")).stdout)
        for role, person in (("mentor", MENTOR), ("mentee", MENTEE)):
            result = await acli(layout, "group", "add", str(created["id"]), "--role", role, "--email", person["email"],
                                "--name", person["name"], "--handle", person["handle"], "--json")
            assert result.returncode == 0, result.stderr
        alias = created["alias"]
        code, reply = await send(layout.smtp_port, message(f"Jane <{STRANGER}>", alias, "hi", DISCLOSURE), STRANGER,
                                 alias)
        assert code == 550 and "only from its members" in reply
        inbox = Inboxes(sink)
        [alert] = await eventually(lambda: inbox.lead, timeout=20)
        assert str(alert["Subject"]).startswith("URGENT") and "group Robotics" in str(alert["Subject"])
        assert STRANGER in text(alert) and leaks(alert) == []
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert inbox.counts() == {"mentor": 0, "mentee": 0, "moderators": 0, "lead": 1, "coordinator": 0}
        assert MODERATORS not in [r.rcpt_tos[0] for r in sink.received] and DOMAIN in alias
    finally:
        await relay.stop()


async def _alert_failed(relay: Relay, rcpt: str) -> str:
    """The id of the outbound row of the UNVERIFIED SENDER alert to `rcpt`, once its delivery failed."""
    async def failed() -> list[str]:
        async with relay.engine.connect() as connection:
            found = await connection.execute(select(outbound.c.id).where(outbound.c.rcpt == rcpt,
                                                                         outbound.c.state == "failed"))
            return [str(outbound_id) for outbound_id in found.scalars()]

    [found] = await eventually(failed, timeout=20)
    return found


async def test_a_stranger_alert_the_lead_never_gets_is_reported_once(layout: Layout, sink: Sink) -> None:
    """The lead's server refuses the UNVERIFIED SENDER alert: nothing was delivered or held, so nobody else knows.
    The safeguarding sweep tells the coordinator and the policy's moderators, once however many sweeps, which
    pair and member were written to, when, the kinds of the signs, that nothing was delivered or held and the
    server's answer. The coordinator reads the sender's address as the lead was to; the moderators do not (not
    an enrolled identity, but maybe the child's own or their family's), and are told who has it."""
    sink.handler.refused.add(LEAD)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    relay = await started(layout, clock)
    try:
        pair = await acreate_pair(layout)
        assert (await from_stranger(layout, pair, DISCLOSURE))[0] == 550
        outbound_id = await _alert_failed(relay, LEAD)
        clock.advance(timedelta(minutes=1))
        report = await relay.safeguarding.run_once()
        assert report.undelivered == 1 and sorted(report.mails) == sorted([COORDINATOR, MODERATORS])
        clock.advance(timedelta(minutes=20))
        assert (await relay.safeguarding.run_once()).mails == []  # once per alert, however many sweeps
        inbox = Inboxes(sink)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert inbox.counts() == {"mentor": 0, "mentee": 0, "moderators": 1, "lead": 0, "coordinator": 1}
        [staff], [moderators] = inbox.coordinator, inbox.moderators
        for told in (staff, moderators):
            assert str(told["Subject"]) == (f"URGENT: UNVERIFIED SENDER alert not delivered in STEM mentoring "
                                            f"(pair {pair['id']})")
            assert told["Importance"] == "high" and leaks(told) == []
            said = " ".join(text(told).split())
            for expected in (f"was sent to {LEAD}", "could not be delivered", "A message to Oak (mentor)",
                             f"(pair {pair['id']})", "signs of a safeguarding concern: abuse",
                             "nothing was delivered to Oak and nothing is held for review",
                             "The mail server answered: 550 5.1.1 no such mailbox here", "2026"):
                assert expected in said, (expected, said)
            assert "stepdad" not in said and "/held/" not in said
        assert STRANGER in text(staff) and "The relay does not answer this sender" in text(staff)
        assert STRANGER not in str(moderators) + text(moderators)
        assert f"{COORDINATOR} received it in this report" in " ".join(text(moderators).split())
        async with relay.engine.connect() as connection:
            [alert] = await list_events(connection, kind="stranger_alert")
            [event] = await list_events(connection, kind="urgent_alert_undelivered")
        assert (event["pair_id"], event["message_id"]) == (pair["id"], None)
        assert (event["detail"]["outbound_id"], event["detail"]["rcpt"], event["detail"]["stranger_alert"]) == (
            outbound_id, LEAD, alert["id"])
        assert sorted(event["detail"]["to"]) == sorted([COORDINATOR, MODERATORS])
    finally:
        await relay.stop()


async def test_without_a_lead_a_stranger_alert_the_coordinator_never_gets_goes_to_the_moderators(
        layout: Layout, sink: Sink) -> None:
    """No lead: the coordinator is paged in the lead's place, and when that fails, the moderators are the ones
    left to tell; they are not sent the sender's address, and read where it is recorded."""
    sink.handler.refused.add(COORDINATOR)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    use_shipped_policy(layout, lead=False)
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        assert (await from_stranger(layout, pair, DISCLOSURE))[0] == 550
        await _alert_failed(relay, COORDINATOR)
        report = await relay.safeguarding.run_once()
        assert report.undelivered == 1 and report.mails == [MODERATORS]
        assert (await relay.safeguarding.run_once()).mails == []
        [told] = await eventually(lambda: Inboxes(sink).moderators, timeout=20)
        said = " ".join(text(told).split())
        assert f"was sent to {COORDINATOR}" in said and "recorded with the alert (event stranger_alert)" in said
        assert STRANGER not in str(told) + said and "received it in this report" not in said
    finally:
        await relay.stop()
