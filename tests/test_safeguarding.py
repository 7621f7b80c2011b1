"""Safeguarding end to end, through real SMTP into a loopback sink, on the shipped youth-strict policy: a
disclosure or a grooming sign always reaches a person, fast; no rejection is silent; a moderator's own words
reach the sender; two-person release needs two signed-in people. Each test says what each person received:
mentor, mentee, moderators, safeguarding lead, coordinator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from relay.clock import FixedClock
from relay.config import load_settings
from relay.service import Relay
from relay.store.events import list_events
from relay.store.outbound import list_outbound
from relay.store.schema import outbound
from tests.consolekit import add_moderator, csrf_of, serving, session
from tests.safeguarding_kit import (
    COORDINATOR,
    HELP_TEXT,
    LEAD,
    MODERATORS,
    Inboxes,
    leaks,
    text,
    use_shipped_policy,
    write,
)
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    eventually,
    nothing_queued,
    write_transactions,
)

DISCLOSURE = ("I feel unsafe at home and I have been thinking about self-harm again. "
              "Please don't tell my parents.")
GROOMING = ("Let's meet in person on Saturday, just the two of us. Keep this secret. "
            "My address is 12 Elm Street, Springfield.")


async def held(layout: Layout, *args: str) -> list[dict]:  # type: ignore[type-arg]
    result = await acli(layout, "held", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


async def test_a_disclosure_reaches_the_lead_at_once_and_again_when_nobody_acts(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    clock = FixedClock(datetime.now(UTC))
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        queue_id = await write(layout, pair, DISCLOSURE, subject="I need to tell someone")
        # the lead's alert was committed with the hold, before the 250 (not by a later sweep)
        async with relay.engine.connect() as connection:
            queued = [row for row in await list_outbound(connection) if row.message_id == queue_id]
            alerts = await list_events(connection, message_id=queue_id, kind="urgent_alert")
        assert len(queued) == 3  # the help text, the lead's and the moderators' alerts
        assert [(e["detail"]["to"], e["detail"]["moderators"]) for e in alerts] == [([LEAD], [MODERATORS])]
        inbox = Inboxes(sink)
        await sink.wait_for(3)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # nothing more on its way before counting
        assert inbox.counts() == {"mentor": 0, "mentee": 1, "moderators": 1, "lead": 1, "coordinator": 0}

        [alert] = inbox.lead
        assert alert["Subject"].startswith("URGENT") and alert["Importance"] == "high"
        body = text(alert)
        for expected in ("Maple (mentee) to Oak (mentor)", f"pair {pair['id']}", "STEM mentoring (stem)",
                         "keywords (self-harm, URGENT): thinking about self-harm", "(abuse, URGENT): unsafe at home",
                         "(secrecy, URGENT): don't tell my parents", f"/held/{queue_id}", "within 1 hour"):
            assert expected in body, expected
        assert leaks(alert) == []
        [urgent] = inbox.moderators
        assert urgent["Subject"].startswith("URGENT") and f"/held/{queue_id}" in text(urgent)
        assert leaks(urgent) == []
        [helped] = inbox.mentee  # the help text instead of "waiting for review"
        assert HELP_TEXT in text(helped) and "waiting for review" not in str(helped)

        [item] = await held(layout)
        assert (item["id"], item["severity"], item["release_requires"]) == (queue_id, "urgent", 2)

        # an hour passes and nobody has acted: the lead and the coordinator are told again, once. The sweep
        # runs every minute; while nothing is due it takes no write transaction (on SQLite the store's write
        # lock, which intake's commits would wait for).
        clock.advance(timedelta(minutes=59))
        with write_transactions(relay.engine) as writes:
            assert (await relay.safeguarding.run_once()).mails == []
        assert writes == []
        clock.advance(timedelta(minutes=2))
        with write_transactions(relay.engine) as writes:
            again = await relay.safeguarding.run_once()
        assert sorted(again.mails) == sorted([LEAD, COORDINATOR]) and writes
        assert (await relay.safeguarding.run_once()).mails == []
        await eventually(lambda: inbox.counts()["coordinator"] == 1)
        [told] = inbox.coordinator
        assert told["Subject"].startswith("URGENT") and "not reviewed within 1 hour" in told["Subject"]
        assert f"/held/{queue_id}" in text(told) and leaks(told) == []
        await eventually(lambda: len(inbox.lead) == 2)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the mentor's absence
        assert inbox.mentor == [] and (await held(layout))[0]["state"] == "held"  # never released by time
    finally:
        await relay.stop()


async def test_grooming_with_an_address_is_held_for_a_person_not_rejected(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    async with serving(layout):
        await _grooming_script(layout, sink)


async def _grooming_script(layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    queue_id = await write(layout, pair, GROOMING, sender=MENTOR, subject="Saturday")
    inbox = Inboxes(sink)
    await sink.wait_for(3)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # nothing more on its way before counting
    # urgent beats the contact rule's reject: no form letter, the mentee gets nothing, people are told
    assert inbox.counts() == {"mentor": 1, "mentee": 0, "moderators": 1, "lead": 1, "coordinator": 0}
    [to_mentor] = inbox.mentor
    assert "not delivered" not in to_mentor["Subject"] and HELP_TEXT in text(to_mentor)
    body = text(inbox.lead[0])
    assert "Oak (mentor) to Maple (mentee)" in body
    for finding in ("(meeting, URGENT): meet in person", "(secrecy, URGENT): Keep this secret",
                    "(street_address): 12 Elm Street"):
        assert finding in body, finding
    [item] = await held(layout)
    assert item["id"] == queue_id and item["severity"] == "urgent"
    assert {(r["rule"], r["action"]) for r in item["reasons"]} >= {("contact_info", "reject"), ("keywords", "hold")}
    assert await held(layout, "--state", "rejected") == []


async def test_an_automatic_rejection_is_reported_to_the_moderators(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    async with serving(layout):
        await _rejection_script(layout, sink)


async def _rejection_script(layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    queue_id = await write(layout, pair, "Call me on +1 415 555 0134 tonight about the project.", sender=MENTOR,
                           subject="project")
    inbox = Inboxes(sink)
    await sink.wait_for(2)
    await eventually(lambda: nothing_queued(layout), timeout=20)  # nothing more on its way before counting
    assert inbox.counts() == {"mentor": 1, "mentee": 0, "moderators": 1, "lead": 0, "coordinator": 0}
    assert "contained contact details" in text(inbox.mentor[0])  # the policy's canned text, for an automatic one
    [report] = inbox.moderators
    assert "rejected automatically" in report["Subject"] and not report["Subject"].startswith("URGENT")
    assert "contact_info (phone): +1 415 555 0134" in text(report) and f"/held/{queue_id}" in text(report)
    assert "Oak to Maple" in text(report) and leaks(report) == []
    # the console's queue history shows it, with its findings
    await add_moderator(layout, "ana", "stem")
    async with session(layout, "ana") as client:
        queue = (await client.get("/held")).text
    history = queue[queue.index("Recently decided"):]
    assert "rejected automatically by policy youth-strict" in history and "+1 415 555 0134" in history
    # in the queue's history, decided by nobody but the relay, and in the report's counts
    [item] = await held(layout, "--state", "rejected")
    assert (item["id"], item["automatic"], item["decided_by"]) == (queue_id, True, "relay")
    assert await held(layout) == []
    figures = await acli_json(layout, "report", "--program", "stem", "--json")
    assert figures["moderation"]["rejected_automatically"] == 1 and figures["moderation"]["held"] == 0
    assert "1 rejected automatically" in (await acli(layout, "report", "--program", "stem")).stdout


async def test_rejections_in_a_digest_come_once_per_period(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout, "supervised")  # digest: 30m; contact details are held there, so reject them here
    path = layout.root / "policies" / "supervised.yaml"
    held_contacts = "  contact_info:\n    action: hold"
    path.write_text(path.read_text().replace(held_contacts, held_contacts.replace("hold", "reject")))
    clock = FixedClock(datetime.now(UTC))
    relay = Relay(load_settings(layout.config), clock=clock)
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        for number in ("+1 415 555 0134", "+1 415 555 0199"):
            await write(layout, pair, f"My number is {number}.", subject=number)
        inbox = Inboxes(sink)
        await sink.wait_for(2)  # the two canned notices to the mentee; the moderators wait for their digest
        await eventually(lambda: nothing_queued(layout), timeout=20)  # nothing else on its way to them
        assert inbox.moderators == [] and inbox.mentee and len(inbox.mentee) == 2
        clock.advance(timedelta(minutes=10))  # within the digest period: nothing reported, no write lock taken
        with write_transactions(relay.engine) as writes:
            assert (await relay.safeguarding.run_once()).rejection_digests == 0
        assert writes == []
        clock.advance(timedelta(minutes=21))
        first, second = await relay.safeguarding.run_once(), await relay.safeguarding.run_once()
        assert (first.rejection_digests, second.rejection_digests) == (1, 0)
        [digest] = await eventually(lambda: inbox.moderators)
        assert "2 messages rejected automatically" in digest["Subject"]
        assert "+1 415 555 0134" in text(digest) and "+1 415 555 0199" in text(digest)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absences
        assert inbox.mentor == [] and inbox.lead == [] and inbox.coordinator == []
    finally:
        await relay.stop()


async def test_the_sender_hears_the_moderators_own_words(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        queue_id = await write(layout, pair, "My teachers are all idiots and I hate them.", subject="school")
        inbox = Inboxes(sink)
        await sink.wait_for(2)  # held: the routine notice to the mentee and the moderators' alert
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{queue_id}")
            done = await client.post(f"/held/{queue_id}/reject", data={
                "csrf_token": csrf_of(page.text), "reason": "Please be kind about your teachers."})
            assert "Rejected" in done.text
        notice = (await eventually(lambda: [m for m in inbox.mentee if "not delivered" in m["Subject"]]))[0]
        body = text(notice)
        assert "This is what they wrote to you:\n\nPlease be kind about your teachers.\n" in body
        assert "contact details" not in body  # the canned text is for automatic rejections only
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        assert inbox.counts() == {"mentor": 0, "mentee": 2, "moderators": 1, "lead": 0, "coordinator": 0}


async def test_two_person_release_needs_two_signed_in_people(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    async with serving(layout):
        for name in ("ana", "ben", "cat"):
            await add_moderator(layout, name, "stem")
        pair = await acreate_pair(layout)
        queue_id = await write(layout, pair, DISCLOSURE)
        inbox = Inboxes(sink)
        await sink.wait_for(3)
        # the command line: one approval, as a named existing account; never a second
        assert (await acli(layout, "held", "release", queue_id)).returncode == 1
        made_up = await acli(layout, "held", "release", queue_id, "--moderator", "mallory")
        assert made_up.returncode == 1 and "no console account named 'mallory'" in made_up.stderr
        first = await acli(layout, "held", "release", queue_id, "--moderator", "ana", "--json")
        assert json.loads(first.stdout)["status"] == "approved"
        second = await acli(layout, "held", "release", queue_id, "--moderator", "ben")
        assert second.returncode == 1 and "must come from a signed-in account" in second.stderr
        await eventually(lambda: nothing_queued(layout), timeout=20)  # a release would have queued the mentor's
        assert (await held(layout))[0]["approvals"] == ["ana"] and inbox.mentor == []
        # ana again, now in the console: the same account counts once
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{queue_id}")
            confirm = await client.post(f"/held/{queue_id}/release", data={"csrf_token": csrf_of(page.text)})
            assert "Release this message?" in confirm.text and "self-harm" in confirm.text  # names the findings
            again = await client.post(f"/held/{queue_id}/release",
                                      data={"csrf_token": csrf_of(page.text), "confirm": "yes"})
            assert "approval is recorded (1 of 2)" in again.text
        await eventually(lambda: nothing_queued(layout), timeout=20)  # a release would have queued the mentor's
        assert inbox.mentor == []
        # ben, signed in, confirms the findings: the second person
        async with session(layout, "ben") as client:
            page = await client.get(f"/held/{queue_id}")
            assert "approved by ana" in page.text
            done = await client.post(f"/held/{queue_id}/release",
                                     data={"csrf_token": csrf_of(page.text), "confirm": "yes"})
            assert "Released" in done.text
        [delivered] = await eventually(lambda: inbox.mentor)
        assert "self-harm" in text(delivered) and leaks(delivered) == []
        assert (await held(layout, "--state", "released"))[0]["approvals"] == ["ana", "ben"]
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        assert inbox.counts() == {"mentor": 1, "mentee": 1, "moderators": 1, "lead": 1, "coordinator": 0}


async def test_two_person_release_in_the_console_alone(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    async with serving(layout):
        for name in ("ana", "ben"):
            await add_moderator(layout, name, "stem")
        pair = await acreate_pair(layout)
        queue_id = await write(layout, pair, GROOMING, sender=MENTOR)
        inbox = Inboxes(sink)
        await sink.wait_for(3)
        for name, expected in (("ana", "approval is recorded (1 of 2)"), ("ben", "Released")):
            async with session(layout, name) as client:
                page = await client.get(f"/held/{queue_id}")
                done = await client.post(f"/held/{queue_id}/release",
                                         data={"csrf_token": csrf_of(page.text), "confirm": "yes"})
                assert expected in done.text
        [delivered] = await eventually(lambda: inbox.mentee)
        body = text(delivered)
        # what the policy rejects never passes on: the address is removed even from a released urgent message
        assert "meet in person" in body and "12 Elm Street" not in body
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        assert inbox.counts() == {"mentor": 1, "mentee": 1, "moderators": 1, "lead": 1, "coordinator": 0}


async def test_escalation_reaches_the_lead_and_stops_the_follow_up(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        queue_id = await write(layout, pair, DISCLOSURE)
        inbox = Inboxes(sink)
        await sink.wait_for(3)
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{queue_id}")
            first_action = page.text.index('class="actions"')
            assert page.text.index("Escalate to safeguarding lead", first_action) < page.text.index(
                "Release", first_action)
            done = await client.post(f"/held/{queue_id}/escalate", data={
                "csrf_token": csrf_of(page.text), "note": "Please call the school today."})
            assert LEAD in done.text and "escalated" in done.text
            queue = await client.get("/held")
            assert "escalated</span> by ana" in queue.text
        escalations = await eventually(lambda: [m for m in inbox.lead if "escalates" in m["Subject"]])
        assert escalations[0]["Subject"].startswith("URGENT")
        assert "Please call the school today." in text(escalations[0]) and leaks(escalations[0]) == []
        told = await eventually(lambda: inbox.coordinator)
        assert "escalates" in told[0]["Subject"]
        clock.advance(timedelta(hours=2))
        assert (await relay.safeguarding.run_once()).mails == []  # someone acted: no follow-up
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the mentor's absence
        assert (await held(layout))[0]["escalated_by"] == "ana" and inbox.mentor == []


async def test_without_a_lead_the_coordinator_is_told_at_once(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout, lead=False)
    async with serving(layout):
        pair = await acreate_pair(layout)
        await write(layout, pair, "Sometimes I just want to die.")
        inbox = Inboxes(sink)
        await sink.wait_for(3)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # nothing more on its way before counting
    assert inbox.counts() == {"mentor": 0, "mentee": 1, "moderators": 1, "lead": 0, "coordinator": 1}
    assert inbox.coordinator[0]["Subject"].startswith("URGENT")
    assert "A member of the program team will read it soon" in text(inbox.mentee[0])  # the default help text


def test_the_youth_policies_ship_the_same_urgent_lists() -> None:
    from pathlib import Path

    from relay.moderation.policy import parse_policy

    root = Path(__file__).resolve().parent.parent / "policies"
    lists = {}
    for name in ("youth-strict", "supervised"):
        policy = parse_policy(root / f"{name}.yaml")
        lists[name] = {s.params.name: (s.severity, s.action, s.params.words, s.params.unless)
                       for s in policy.rules if s.rule == "keywords"}
        assert policy.notify_rejections
    assert lists["youth-strict"] == lists["supervised"]
    assert {name for name, (severity, *_) in lists["youth-strict"].items() if severity == "urgent"} == {
        "self-harm", "abuse", "secrecy", "meeting", "gifts-money", "private-channel", "photos", "running-away"}


UNSIGNED = {"email": "sam@plain-school.example", "name": "Sam Rivera", "handle": "Birch"}  # no DNS records


async def test_a_forged_from_is_held_and_honest_unsigned_mail_flows(layout: Layout, sink: Sink) -> None:
    """The shipped adult policy (sender_auth: prefer, moderators' digest every hour): a message whose
    envelope sender is elsewhere, From the enrolled mentee, no DKIM, is held as spoofing; the same mentee's
    honest unsigned mail from a domain without records is delivered, only noted, and called spoofing nowhere."""
    use_shipped_policy(layout, "adult-professional")
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        pair = await acreate_pair(layout, MENTOR, UNSIGNED)
        forged = await write(layout, pair, "It is me, send me your number.", sender=UNSIGNED, subject="forged",
                             mail_from="someone@elsewhere.example")
        honest = await write(layout, pair, "Here is my essay plan.", sender=UNSIGNED, subject="honest")
        inbox = Inboxes(sink)
        [delivered] = await eventually(lambda: inbox.mentor)
        assert "Here is my essay plan." in text(delivered) and "It is me" not in text(delivered)
        [item] = await held(layout)
        assert item["id"] == forged and [(r["kind"], r["action"]) for r in item["reasons"]] == [("spoofing", "hold")]
        clock.advance(timedelta(minutes=61))  # the moderators' digest period
        await relay.sweeper.run_once()
        [digest] = await eventually(lambda: inbox.moderators)
        assert "sender_auth (spoofing)" in text(digest) and f"/held/{forged}" in text(digest)
        assert f"/held/{honest}" not in text(digest) and leaks(digest) == []
        # the real mentee learns that a message in their name waits (a delivery of its own, in no set order)
        await eventually(lambda: inbox.of(UNSIGNED["email"]))
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting
        assert [m["Subject"] for m in inbox.of(UNSIGNED["email"])] == ["Your message is waiting for review: forged"]
        assert inbox.counts() == {"mentor": 1, "mentee": 0, "moderators": 1, "lead": 0, "coordinator": 0}
        decisions = await acli_json(layout, "events", "list", "--kind", "decision", "--json")
        honest_reasons = next(d["detail"]["reasons"] for d in decisions if d["message_id"] == honest)
        assert [(r.get("kind"), r.get("action")) for r in honest_reasons[1:]] == [("unverified", "note")]
        figures = await acli_json(layout, "report", "--program", "stem", "--json")
        assert figures["attempts"]["spoofing"] == 1 and figures["attempts"]["unverified"] == 1


async def test_a_disclosure_to_an_ended_pair_still_reaches_a_person(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout)
    async with serving(layout) as relay:
        yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        pair = await acreate_pair(layout, MENTOR, MENTEE, "stem", "--end-date", yesterday)
        await relay.sweep_nudges()  # the end date has passed: the pair ends
        assert (await acli_json(layout, "pair", "show", str(pair["id"]), "--json"))["status"] == "ended"
        await eventually(lambda: nothing_queued(layout), timeout=20)  # the farewells are out before counting
        inbox = Inboxes(sink)
        before = inbox.counts()
        await write(layout, pair, "Are you still there?", subject="hello again")
        queue_id = await write(layout, pair, DISCLOSURE, subject="please")
        await eventually(lambda: inbox.lead)
        [item] = await held(layout)
        assert (item["id"], item["severity"]) == (queue_id, "urgent")  # the routine one is archived, not held
        await eventually(lambda: inbox.counts()["moderators"] > before["moderators"])
        await eventually(lambda: any(HELP_TEXT in text(m) for m in inbox.mentee))  # queued with the alerts
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting the mentor's
        assert inbox.counts()["mentor"] == before["mentor"]  # the former mentor gets nothing


async def test_a_stretched_disclosure_under_supervised_is_held_urgent_and_the_lead_told(layout: Layout,
                                                                                    sink: Sink) -> None:
    """Under `supervised` (only a pair's first 3 messages are always held), disclosures written as children
    write them, an Arabic one stretched with tatweel and an English one with stretched letters, are held
    as urgent, the lead is told at once and quotes each as written, and the mentor gets neither."""
    use_shipped_policy(layout, "supervised")
    arabic, english = "أنا تعبانة... أريـــد أن أمـــوت", "i just want to kill myselfff"
    async with serving(layout):
        pair = await acreate_pair(layout)
        for number in range(3):  # the first messages, held whatever they say
            await write(layout, pair, f"Hello, this is message {number}.", subject=f"hello {number}")
        inbox = Inboxes(sink)
        ids = [await write(layout, pair, arabic, subject="تعبانة"), await write(layout, pair, english, subject="sorry")]
        alerts = await eventually(lambda: inbox.lead if len(inbox.lead) == 2 else None)
        bodies = sorted((text(alert) for alert in alerts), key=lambda body: english in body)
        assert "(self-harm, URGENT): أريـــد أن أمـــوت" in bodies[0] and f"/held/{ids[0]}" in bodies[0]
        assert "(self-harm, URGENT): kill myselfff" in bodies[1] and f"/held/{ids[1]}" in bodies[1]
        assert all(alert["Subject"].startswith("URGENT") and leaks(alert) == [] for alert in alerts)
        urgent = {item["id"]: item for item in await held(layout) if item["severity"] == "urgent"}
        assert sorted(urgent) == sorted(ids) and all(urgent[i]["release_requires"] == 2 for i in ids)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting the mentor's
        assert inbox.mentor == []


# One disclosure per language a shipped list covers, as children type them (no accents, "ة" typed "ه", Arabic
# and Russian in Latin letters), and the running-away list; then two ordinary messages that once paged the lead.
DISCLOSURES = [
    ("running-away", "im going to run away from home tonight"),
    ("abuse", "el novio de mi mama me toca"),
    ("secrecy", "il m'a dit de le dire a personne"),
    ("photos", "скинь фотку"),
    ("abuse", "otchim menya b'et"),
    ("self-harm", "عايزه اموت"),
    ("photos", "wallah he said ib3atli sora of me"),
    ("abuse", "meu padrasto me bate"),
    ("running-away", "ich haue heute nacht von zu hause ab"),
    ("secrecy", "він сказав нікому не казати"),
    ("self-harm", "kendimi oldurmek istiyorum"),
    ("photos", "apni photo bhejo"),
]
ORDINARY = ["my brother beats me at chess every single time",
            "For English we have to write about why Hamlet is suicidal in act 3"]


async def test_disclosures_in_every_listed_language_page_the_lead_and_ordinary_mail_does_not(
        layout: Layout, sink: Sink) -> None:
    """Under youth-strict each disclosure is held as urgent and the lead gets an URGENT alert naming its kind
    and linking its item; the two ordinary messages are held for the routine review only, and page nobody."""
    use_shipped_policy(layout)
    async with serving(layout):
        pair = await acreate_pair(layout)
        inbox = Inboxes(sink)
        ids = [await write(layout, pair, body, subject=f"message {n}") for n, (_, body) in enumerate(DISCLOSURES)]
        quiet = [await write(layout, pair, body, subject="homework") for body in ORDINARY]
        alerts = await eventually(lambda: inbox.lead if len(inbox.lead) >= len(ids) else None, timeout=30)
        await eventually(lambda: nothing_queued(layout), timeout=30)
        assert len(inbox.lead) == len(ids)  # nothing more: the ordinary messages paged nobody
        items = {item["id"]: item for item in await held(layout)}
        for queue_id, (kind, body) in zip(ids, DISCLOSURES, strict=True):
            [alert] = [alert for alert in alerts if f"/held/{queue_id}" in text(alert)]
            assert alert["Subject"].startswith("URGENT") and f"({kind}, URGENT)" in text(alert), (body, text(alert))
            assert items[queue_id]["severity"] == "urgent", body
        assert [items[queue_id]["severity"] for queue_id in quiet] == ["normal", "normal"]
        assert inbox.mentor == []


async def test_a_disclosure_to_a_group_reaches_the_lead_and_no_member(layout: Layout, sink: Sink) -> None:
    from tests.support import send, simple_message
    from tests.test_groups import PEOPLE, make_group

    use_shipped_policy(layout)
    async with serving(layout):
        group = await asyncio.to_thread(make_group, layout)
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", group["alias"], "help", DISCLOSURE)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], group["alias"])
        assert code == 250, reply
        inbox = Inboxes(sink)
        [alert] = await eventually(lambda: inbox.lead)
        assert alert["Subject"].startswith("URGENT") and "Maple to the group Robotics" in alert["Subject"]
        assert leaks(alert) == []
        [item] = await held(layout)
        assert item["severity"] == "urgent"
        await eventually(lambda: inbox.moderators)
        [to_sender] = await eventually(lambda: inbox.mentee)  # the help text, queued with the alerts
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before counting the members'
        others = [p["email"] for p in PEOPLE if p["email"] != MENTEE["email"]]
        assert all(inbox.of(address) == [] for address in others)  # no member gets the disclosure
        assert HELP_TEXT in text(to_sender)


async def test_a_disclosure_in_mail_that_looks_automatic_is_read_and_reaches_a_person(layout: Layout,
                                                                                      sink: Sink) -> None:
    """An "Auto:" subject or an Auto-Submitted header marks an out-of-office reply, which is archived and not
    forwarded: but a child's mail client (or the child) may set either, so the mail is read first."""
    from tests.support import send, simple_message

    use_shipped_policy(layout)
    async with serving(layout):
        pair = await acreate_pair(layout)
        inbox = Inboxes(sink)
        sender = f"{MENTEE['name']} <{MENTEE['email']}>"
        away = simple_message(sender, pair["mentor_alias"], "Auto: I am away", "I am away until Monday.",
                              Auto_Submitted="auto-replied")
        assert (await send(layout.smtp_port, away, MENTEE["email"], pair["mentor_alias"]))[0] == 250
        raw = simple_message(sender, pair["mentor_alias"], "Out of office: please", DISCLOSURE,
                             Auto_Submitted="auto-replied")
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
        assert code == 250, reply
        [alert] = await eventually(lambda: inbox.lead)
        assert alert["Subject"].startswith("URGENT") and leaks(alert) == []
        [item] = await held(layout)  # the real out-of-office reply is archived, not held
        assert (item["id"], item["severity"]) == (reply.rsplit(" ", 1)[-1], "urgent")
        await eventually(lambda: nothing_queued(layout), timeout=20)
        mentor_got = [str(m["Subject"]) for m in inbox.mentor]
        assert len(mentor_got) == 1 and "away" in mentor_got[0].lower(), mentor_got  # told once: Maple is away
        # An adult's out-of-office text reaches nobody, so its contact details page nobody either.
        travel = simple_message(f"{MENTOR['name']} <{MENTOR['email']}>", pair["mentee_alias"], "Out of office",
                                "I am travelling until Monday. WhatsApp me on +44 7700 900123 if urgent.",
                                Auto_Submitted="auto-replied")
        assert (await send(layout.smtp_port, travel, MENTOR["email"], pair["mentee_alias"]))[0] == 250
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert len(inbox.lead) == 1 and len(await held(layout)) == 1


async def test_an_alert_the_lead_never_gets_is_reported_to_the_others_who_can_act(layout: Layout, sink: Sink) -> None:
    """The lead's mailbox refuses the URGENT alert (a typo in the address, a full mailbox): the coordinator and
    the moderators are told, once, with the address, the server's answer and the item."""
    use_shipped_policy(layout)
    sink.handler.refused.add(LEAD)
    async with serving(layout) as relay:
        pair = await acreate_pair(layout)
        queue_id = await write(layout, pair, DISCLOSURE, subject="I need to tell someone")
        inbox = Inboxes(sink)

        async def failed() -> bool:
            async with relay.engine.connect() as connection:
                return any(row.state == "failed" for row in await list_outbound(connection)
                           if row.message_id == queue_id)

        await eventually(failed, timeout=20)
        assert inbox.lead == []
        report = await relay.safeguarding.run_once()
        assert report.undelivered == 1 and sorted(report.mails) == sorted([COORDINATOR, MODERATORS])
        assert (await relay.safeguarding.run_once()).mails == []  # once per alert
        [told] = await eventually(lambda: inbox.coordinator)
        assert told["Subject"].startswith("URGENT") and "safeguarding alert not delivered" in told["Subject"]
        body = text(told)
        for expected in (LEAD, "no such mailbox", f"/held/{queue_id}", "Maple (mentee) to Oak (mentor)"):
            assert expected in body, expected
        assert leaks(told) == []
        await eventually(lambda: len(inbox.moderators) == 2)  # their URGENT alert, then this
        async with relay.engine.connect() as connection:
            [event] = await list_events(connection, message_id=queue_id, kind="urgent_alert_undelivered")
        assert event["detail"]["rcpt"] == LEAD and sorted(event["detail"]["to"]) == sorted([COORDINATOR, MODERATORS])


async def _failed_copies(relay: Relay, rcpt: str) -> list[str]:
    """The ids of the messages whose mail to `rcpt` failed (the sink refused it), oldest first."""
    query = (select(outbound.c.message_id).where(outbound.c.rcpt == rcpt, outbound.c.state == "failed")
             .order_by(outbound.c.created_at, outbound.c.id))
    async with relay.engine.connect() as connection:
        return [str(message_id) for message_id in (await connection.execute(query)).scalars()]


async def _lead_copy_failed(relay: Relay, rcpt: str, count: int = 1) -> str:
    """The id of the message whose (`count`th) copy to `rcpt` failed, once it has."""
    async def failed() -> list[str]:
        found = await _failed_copies(relay, rcpt)
        return found if len(found) >= count else []

    return (await eventually(failed, timeout=20))[count - 1]


@pytest.mark.parametrize(("address", "body", "found"), [
    ("help", DISCLOSURE, "signs of harm found: abuse, secrecy, self-harm"),
    ("concern", "My mentor asked me to add him on another app.", "every concern goes to the safeguarding lead"),
])
async def test_a_help_or_concern_copy_the_lead_never_gets_is_reported_once(
        layout: Layout, sink: Sink, address: str, body: str, found: str) -> None:
    """Mail to help@ with a disclosure, and any mail to concern@, goes to the lead as well as the coordinator,
    without a hold. When the lead's copy is refused, the coordinator (who has the message, and believes the lead
    has it too) and the policy's moderators are told, once, that the lead did not get it; the moderators are
    not sent what the child wrote (help@ and concern@ are for the coordinator and the lead only)."""
    from tests.support import DOMAIN, send, simple_message

    use_shipped_policy(layout)
    sink.handler.refused.add(LEAD)
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        pair = await acreate_pair(layout)
        inbox = Inboxes(sink)
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", f"{address}@{DOMAIN}", "please read", body)
        assert (await send(layout.smtp_port, raw, MENTEE["email"], f"{address}@{DOMAIN}"))[0] == 250
        message_id = await _lead_copy_failed(relay, LEAD)
        [copy] = await eventually(lambda: inbox.coordinator)
        assert str(copy["Subject"]).startswith("URGENT: [Concern]")

        report = await relay.safeguarding.run_once()
        assert report.undelivered == 1 and sorted(report.mails) == sorted([COORDINATOR, MODERATORS])
        clock.advance(timedelta(minutes=20))
        assert (await relay.safeguarding.run_once()).mails == []  # once per copy, however many sweeps
        [told] = await eventually(lambda: inbox.moderators)
        assert str(told["Subject"]) == f"URGENT: safeguarding alert not delivered in STEM mentoring (pair {pair['id']})"
        assert told["Importance"] == "high"
        said = text(told)
        for expected in (LEAD, "no such mailbox", f"Maple (mentee) to {address}@{DOMAIN}", found,
                         f"The coordinator, {COORDINATOR}, was sent the message itself", message_id,
                         "not in the review console"):
            assert expected in said, expected
        assert body not in said and "/held/" not in said and leaks(told) == []
        await eventually(lambda: len(inbox.coordinator) == 2)
        assert str(inbox.coordinator[1]["Subject"]) == str(told["Subject"])
        async with relay.engine.connect() as connection:
            [event] = await list_events(connection, message_id=message_id, kind="urgent_alert_undelivered")
        assert (event["detail"]["rcpt"], event["detail"]["address"]) == (LEAD, address)
        assert sorted(event["detail"]["to"]) == sorted([COORDINATOR, MODERATORS])
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert len(inbox.moderators) == 1 and len(inbox.coordinator) == 2 and inbox.lead == []


async def test_without_a_lead_only_an_urgent_help_copy_the_coordinator_never_gets_is_reported(
        layout: Layout, sink: Sink) -> None:
    """A program without a safeguarding lead: the coordinator is told in the lead's place, so their copy of a
    disclosure to help@ is the alert, and its failure is reported to the moderators. A routine question to
    help@ whose copy fails is not a safeguarding alert, and is not reported as one."""
    from tests.support import DOMAIN, send, simple_message

    use_shipped_policy(layout, lead=False)
    sink.handler.refused.add(COORDINATOR)
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        await acreate_pair(layout)
        inbox = Inboxes(sink)

        async def to_help(subject: str, body: str) -> str:
            raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", f"help@{DOMAIN}", subject, body)
            code, reply = await send(layout.smtp_port, raw, MENTEE["email"], f"help@{DOMAIN}")
            assert code == 250, reply
            return reply

        await to_help("meetings", "Can we move our sessions to Tuesdays?")
        routine = await _lead_copy_failed(relay, COORDINATOR)
        assert (await relay.safeguarding.run_once()).mails == []
        await to_help("a question", DISCLOSURE)

        disclosure = await _lead_copy_failed(relay, COORDINATOR, 2)
        report = await relay.safeguarding.run_once()
        assert report.undelivered == 1 and report.mails == [MODERATORS]
        clock.advance(timedelta(minutes=20))
        assert (await relay.safeguarding.run_once()).mails == []
        [told] = await eventually(lambda: inbox.moderators)
        said = text(told)
        assert COORDINATOR in said and f"help@{DOMAIN}" in said and disclosure in said and routine not in said
        assert "was sent the message itself" not in said  # theirs is the copy that failed
        async with relay.engine.connect() as connection:
            reported = await list_events(connection, kind="urgent_alert_undelivered")
        assert [e["message_id"] for e in reported] == [disclosure]


async def test_a_group_alert_the_lead_never_gets_is_reported_once(layout: Layout, sink: Sink) -> None:
    """A disclosure to a group is held like a pair's: the lead's refused alert is reported once to the
    coordinator and the moderators, naming the group."""
    from tests.support import send, simple_message
    from tests.test_groups import make_group

    use_shipped_policy(layout)
    sink.handler.refused.add(LEAD)
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        group = await asyncio.to_thread(make_group, layout)
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", group["alias"], "help", DISCLOSURE)
        assert (await send(layout.smtp_port, raw, MENTEE["email"], group["alias"]))[0] == 250
        message_id = await _lead_copy_failed(relay, LEAD)
        report = await relay.safeguarding.run_once()
        assert report.undelivered == 1 and sorted(report.mails) == sorted([COORDINATOR, MODERATORS])
        clock.advance(timedelta(minutes=20))
        assert (await relay.safeguarding.run_once()).mails == []
        inbox = Inboxes(sink)
        [told] = await eventually(lambda: inbox.coordinator)
        assert "(group Robotics)" in str(told["Subject"]) and f"/held/{message_id}" in text(told)
        assert leaks(told) == []



async def test_a_disclosure_to_help_or_concern_reaches_the_lead_even_after_the_pair_is_closed(
        layout: Layout, sink: Sink) -> None:
    """help@ goes to the coordinator unread by any moderator: a disclosure written there reaches the lead too,
    marked urgent (it pauses nothing: only a concern does). A concern always reaches the lead. And a child
    whose pair was closed can still write to either."""
    from tests.support import DOMAIN, send, simple_message

    use_shipped_policy(layout)
    async with serving(layout):
        pair = await acreate_pair(layout)
        inbox = Inboxes(sink)
        sender = f"{MENTEE['name']} <{MENTEE['email']}>"

        async def to_program(address: str, subject: str, body: str) -> None:
            raw = simple_message(sender, f"{address}@{DOMAIN}", subject, body)
            code, reply = await send(layout.smtp_port, raw, MENTEE["email"], f"{address}@{DOMAIN}")
            assert code == 250, reply

        await to_program("help", "meetings", "Can we move our sessions to Tuesdays?")
        [routine] = await eventually(lambda: inbox.coordinator)
        assert str(routine["Subject"]).startswith("[Help] Maple") and routine["Importance"] is None
        await to_program("help", "a question", DISCLOSURE)
        [told] = await eventually(lambda: inbox.lead)
        assert str(told["Subject"]).startswith("URGENT: [Concern] Maple") and told["Importance"] == "high"
        assert "unsafe at home" in text(told) and leaks(told) == []
        await eventually(lambda: len(inbox.coordinator) == 2)
        assert (await acli_json(layout, "pair", "show", str(pair["id"]), "--json"))["status"] == "active"

        closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "the term is over")
        assert closed.returncode == 0, closed.stderr
        await to_program("concern", "after the end", "My old mentor keeps writing to me on Instagram.")
        await eventually(lambda: len(inbox.lead) == 2)
        await eventually(lambda: sum("URGENT: [Concern]" in str(m["Subject"]) for m in inbox.coordinator) == 2)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert len(inbox.lead) == 2  # the routine question never went to the lead


async def test_a_concern_from_a_child_with_a_closed_pair_and_an_open_group_reaches_the_groups_program(
        layout: Layout, sink: Sink) -> None:
    """What is open comes first: a concern from a child whose pair in one program was closed and who is now in
    a group of another program is about the group, and reaches that program's coordinator and lead."""
    import yaml

    from tests.support import DOMAIN, send, simple_message

    use_shipped_policy(layout)
    stem = yaml.safe_load((layout.root / "programs" / "stem.yaml").read_text())
    arts = {**stem, "id": "arts", "name": "Arts mentoring", "coordinator": "coord@arts.example",
            "safeguarding": {**stem["safeguarding"], "lead": "lead@arts.example"}}
    (layout.root / "programs" / "arts.yaml").write_text(yaml.safe_dump(arts, allow_unicode=True))
    async with serving(layout):
        pair = await acreate_pair(layout)
        assert (await acli(layout, "pair", "close", str(pair["id"]))).returncode == 0
        created = await acli(layout, "group", "create", "--program", "arts", "--name", "Painting", "--json")
        assert created.returncode == 0, created.stderr
        group = json.loads(created.stdout)
        for role, email, name, handle in (("mentor", "elm@arts.example", "Ada Lovelace", "Elm"),
                                          ("mentee", MENTEE["email"], MENTEE["name"], "Maplex")):
            added = await acli(layout, "group", "add", str(group["id"]), "--role", role, "--email", email,
                               "--name", name, "--handle", handle, "--language", "en")
            assert added.returncode == 0, added.stderr
        await eventually(lambda: nothing_queued(layout), timeout=20)
        before = len(sink.received)
        raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", f"concern@{DOMAIN}", "worried",
                             "Someone in the painting group makes me uncomfortable.")
        assert (await send(layout.smtp_port, raw, MENTEE["email"], f"concern@{DOMAIN}"))[0] == 250
        await eventually(lambda: nothing_queued(layout), timeout=20)
        told = {rcpt for received in sink.received[before:] for rcpt in received.rcpt_tos}
        assert {"coord@arts.example", "lead@arts.example"} <= told and not {COORDINATOR, LEAD} & told, told
        shown = json.loads((await acli(layout, "group", "show", str(group["id"]), "--json")).stdout)
        assert shown["status"] == "paused"


def _html_only(to: str, body: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"{MENTEE['name']} <{MENTEE['email']}>", to, "please"
    message["Message-ID"] = f"<html-only.{to.partition('@')[0]}@phone.example>"
    first, rest = body.split(" at home", 1)  # a phrase split across tags is read whole
    message.set_content(f"<html><head><style>p {{color: red}}</style></head><body><div>Hi,</div>"
                        f"<p>{first} at <b>home</b>{rest}</p></body></html>", subtype="html")
    return message.as_bytes()


def _text_photo_text(to: str, body: str) -> bytes:
    """As Apple Mail writes a message with a picture in the middle: text, the inline photo, more text."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"{MENTEE['name']} <{MENTEE['email']}>", to, "please"
    message["Message-ID"] = "<text-photo-text@phone.example>"
    message.make_mixed()
    before, photo, after = EmailMessage(), EmailMessage(), EmailMessage()
    before.set_content("Hi, I need to tell someone. This is my arm:\n")
    photo.set_content(b"\xff\xd8\xff\xe0" + b"\0" * 200, maintype="image", subtype="jpeg", disposition="inline",
                      filename="IMG_0042.jpeg")
    after.set_content(f"\n{body}\n")
    for part in (before, photo, after):
        message.attach(part)
    return message.as_bytes()


async def test_help_and_concern_read_every_text_part_and_html_as_partner_mail_is_read(
        layout: Layout, sink: Sink) -> None:
    """help@ and concern@ are read as partner mail is (every text part, the visible text of HTML), for the urgent
    check and for the coordinator: an HTML-only disclosure and one after a photo (text / photo / text) reach the
    lead, marked urgent, and the coordinator reads the whole text, HTML as text."""
    from tests.support import DOMAIN, send

    use_shipped_policy(layout)
    async with serving(layout):
        await acreate_pair(layout)
        inbox = Inboxes(sink)
        for number, (address, build) in enumerate([("help", _html_only), ("help", _text_photo_text),
                                                   ("concern", _html_only)], start=1):
            to = f"{address}@{DOMAIN}"
            code, reply = await send(layout.smtp_port, build(to, DISCLOSURE), MENTEE["email"], to)
            assert code == 250, reply
            await eventually(lambda n=number: len(inbox.lead) == n and len(inbox.coordinator) == n)
            for told in (inbox.lead[-1], inbox.coordinator[-1]):
                assert str(told["Subject"]).startswith("URGENT: ") and told["Importance"] == "high"
                body = " ".join(text(told).split())
                assert DISCLOSURE in body and "<" not in body and "color: red" not in body, body
                assert leaks(told) == []
            if build is _text_photo_text:
                assert "This is my arm:" in text(inbox.coordinator[-1])
        await eventually(lambda: nothing_queued(layout), timeout=20)


async def test_a_reply_to_the_relays_own_mail_reaches_a_person_and_is_read_for_signs(
        layout: Layout, sink: Sink) -> None:
    """A child presses Reply on the farewell, or on help@'s confirmation: every notice a participant gets has
    Reply-To help@, so the reply is help@ mail (the coordinator, the lead when it is urgent); a client that
    answers From (notices@) instead reaches the same place. A stranger writing to notices@ is still refused."""
    from tests.support import DOMAIN, send, simple_message

    use_shipped_policy(layout)
    async with serving(layout):
        pair = await acreate_pair(layout)
        inbox = Inboxes(sink)
        sender = f"{MENTEE['name']} <{MENTEE['email']}>"

        async def reply(notice: EmailMessage, to: str, body: str) -> None:
            raw = simple_message(sender, to, f"Re: {notice['Subject']}", body, In_Reply_To=notice["Message-ID"])
            code, answer = await send(layout.smtp_port, raw, MENTEE["email"], to)
            assert code == 250, answer

        closed = await acli(layout, "pair", "close", str(pair["id"]), "--reason", "the term is over")
        assert closed.returncode == 0, closed.stderr
        [farewell] = await eventually(lambda: [m for m in inbox.mentee if "goodbye" in str(m["Subject"])])
        assert farewell["Reply-To"] == f"help@{DOMAIN}"
        await reply(farewell, farewell["Reply-To"], "Thank you. " + DISCLOSURE)
        [told] = await eventually(lambda: inbox.lead)
        assert str(told["Subject"]).startswith("URGENT: ") and told["Importance"] == "high"
        assert "unsafe at home" in text(told) and leaks(told) == []

        [confirmation] = await eventually(lambda: [m for m in inbox.mentee if "reached" in str(m["Subject"])])
        assert confirmation["Reply-To"] == f"help@{DOMAIN}"
        await reply(confirmation, f"notices@{DOMAIN}", "He did it again tonight. I want to kill myself.")
        await eventually(lambda: len(inbox.lead) == 2 and len(inbox.coordinator) >= 3)
        assert "kill myself" in text(inbox.lead[-1])
        await eventually(lambda: nothing_queued(layout), timeout=20)
        notices = [m for m in inbox.mentee if str(m["From"]).endswith(f"<notices@{DOMAIN}>")]
        # the farewell and one confirmation: an answer to a confirmation minutes old gets none (a probable loop)
        assert len(notices) == 2 and all(m["Reply-To"] == f"help@{DOMAIN}" for m in notices)

        stranger = simple_message("Someone <someone@elsewhere.example>", f"notices@{DOMAIN}", "hi", "hello")
        code, answer = await send(layout.smtp_port, stranger, "someone@elsewhere.example", f"notices@{DOMAIN}")
        assert code == 550, answer
        code, answer = await send(layout.smtp_port, stranger, "", f"notices@{DOMAIN}")  # the null sender
        assert code == 550, answer
        assert len(inbox.lead) == 2
