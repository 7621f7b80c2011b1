"""The end of a pair: the ending-soon notice, the farewell, the polite note for later mail to an ended
alias, and the contact exchange (both yes; one declines; the program forbids it; never after a concern;
one partner at a time), and a changed end date."""

from __future__ import annotations

import mailbox
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from relay.clock import FixedClock
from relay.service import Relay
from relay.store.events import list_events
from relay.store.pairs import Pair
from tests.nudging import NOTICES_FROM, enrol, notices_in, running, wait_for_notices, words, write, write_program
from tests.support import DOMAIN, Layout, Sink, acli, eventually, nothing_queued, send, simple_message

START = datetime(2026, 6, 20, 14, 0, tzinfo=UTC)
END = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # midnight in New York after 30 June, the last day
OAK = ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", "Europe/Berlin")
MAPLE = ("maple.student@mail.example.org", "Jane Doe", "Maple", None)
WILLOW = ("willow@mail.example.org", "Kenji Sato", "Willow", None)
SHARE = f"share@{DOMAIN}"


async def events_of(relay: Relay, *kinds: str) -> list[dict]:  # type: ignore[type-arg]
    async with relay.engine.connect() as connection:
        return [e for e in await list_events(connection, limit=100_000) if e["kind"] in kinds]


async def share(relay: Relay, sender: str, subject: str) -> None:
    port = relay.settings.relay.smtp.port
    code, text = await send(port, simple_message(sender, SHARE, subject, "."), sender, SHARE)
    assert code == 250, text


async def run_until(relay: Relay, clock: FixedClock, until: datetime) -> None:
    while clock.now() < until:
        clock.advance(timedelta(hours=1))
        await relay.sweep_nudges()


async def ended_pair(layout: Layout, relay: Relay, clock: FixedClock) -> Pair:
    pair = await enrol(relay, clock, OAK, MAPLE)
    await write(relay, pair, "mentee", "Hello Oak")
    clock.advance(timedelta(hours=1))
    await write(relay, pair, "mentor", "Re: Hello Oak")
    await run_until(relay, clock, END + timedelta(hours=9))
    return pair


async def test_ending_soon_farewell_and_the_ended_alias(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        pair = await ended_pair(layout, relay, clock)
        timeline = sorted((e["kind"], e["detail"].get("to_role"), e["at"])
                          for e in await events_of(relay, "ending_soon", "farewell", "pair.ended"))
        assert timeline == sorted([
            ("ending_soon", "mentor", datetime(2026, 6, 24, 6, 0, tzinfo=UTC)),  # 08:00 in Berlin
            ("ending_soon", "mentee", datetime(2026, 6, 24, 12, 0, tzinfo=UTC)),  # 08:00 in New York
            ("pair.ended", None, END),
            ("farewell", "mentor", datetime(2026, 7, 1, 6, 0, tzinfo=UTC)),
            ("farewell", "mentee", datetime(2026, 7, 1, 12, 0, tzinfo=UTC)),
        ])
        assert [e["kind"] for e in await events_of(relay, "nudge.first", "nudge.checkin")] == []
        received = await wait_for_notices(sink, 4)
        soon = next(r.message for r in received if r.rcpt_tos == [MAPLE[0]] and "ends on" in str(r.message["Subject"]))
        assert str(soon["Subject"]) == "Your conversation with Oak ends on 30 June 2026"
        assert f"Write to share@{DOMAIN} with the subject \"yes Oak\"" in words(soon)
        farewell = next(r.message for r in received
                        if r.rcpt_tos == [OAK[0]] and "goodbye" in str(r.message["Subject"]))
        assert "Your conversation with Maple in STEM mentoring has come to its end" in words(farewell)

        # the two messages written before the end, delivered by the worker in real time: both in before
        # the sink's relayed mail is taken as the reference for "nothing more passed on"
        await eventually(lambda: len([r for r in sink.received if NOTICES_FROM not in str(r.message["From"])]) == 2)
        await eventually(lambda: nothing_queued(layout), timeout=20)
        relayed_before = [r for r in sink.received if NOTICES_FROM not in str(r.message["From"])]
        await write(relay, pair, "mentee", "Are you still there?")
        await write(relay, pair, "mentee", "Hello?")
        notes = await wait_for_notices(sink, 5)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absence below
        note = next(r for r in notes if "has ended" in str(r.message["Subject"]))
        assert note.rcpt_tos == [MAPLE[0]] and str(note.message["Subject"]) == "Your conversation with Oak has ended"
        assert "it was not passed on" in words(note.message)
        assert len(await events_of(relay, "closed_notice")) == 1  # once, not per message
        decisions = [e["detail"]["decision"] for e in await events_of(relay, "decision")]
        assert decisions[-2:] == ["ended", "ended"]  # archived
        assert [r for r in sink.received if NOTICES_FROM not in str(r.message["From"])] == relayed_before

        port = relay.settings.relay.smtp.port
        alias = pair.mentor.alias_address(DOMAIN)
        code, text = await send(port, simple_message("someone@elsewhere.example", alias, "hi", "hi"),
                                "someone@elsewhere.example", alias)
        assert code == 550 and "only from the person it was set up for" in text


async def test_an_extended_end_date_gets_its_own_ending_notice(layout: Layout, sink: Sink) -> None:
    """Told "ends on 30 June", then the program is extended to 31 August: nobody may be left believing the
    old date, and the farewell of 1 September must not come unannounced: both are told of the new date."""
    write_program(layout, end_date="2026-06-30")
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        await run_until(relay, clock, datetime(2026, 6, 26, 14, 0, tzinfo=UTC))
        received = await wait_for_notices(sink, 2)
        assert sorted(str(r.message["Subject"]) for r in received) == [
            "Your conversation with Maple ends on 30 June 2026", "Your conversation with Oak ends on 30 June 2026"]
    write_program(layout, end_date="2026-08-31")  # the coordinator extends the program; the relay restarts
    async with running(layout, clock) as relay:
        clock.advance(datetime(2026, 8, 23, 14, 0, tzinfo=UTC) - clock.now())
        await run_until(relay, clock, datetime(2026, 9, 1, 14, 0, tzinfo=UTC))
        soon = [(e["detail"]["to_role"], e["detail"]["last_day"], e["at"].date().isoformat())
                for e in await events_of(relay, "ending_soon")]
        assert sorted(soon) == sorted([("mentor", "2026-06-30", "2026-06-24"), ("mentee", "2026-06-30", "2026-06-24"),
                                       ("mentor", "2026-08-31", "2026-08-25"), ("mentee", "2026-08-31", "2026-08-25")])
        received = await wait_for_notices(sink, 6)
        subjects = [(r.rcpt_tos[0], str(r.message["Subject"])) for r in received]
        assert (MAPLE[0], "Your conversation with Oak ends on 31 August 2026") in subjects
        assert (OAK[0], "Your conversation with Maple ends on 31 August 2026") in subjects
        assert [e["at"].date().isoformat() for e in await events_of(relay, "farewell")] == ["2026-09-01"] * 2


async def test_both_say_yes_and_addresses_are_exchanged_once(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        pair = await ended_pair(layout, relay, clock)
        await share(relay, OAK[0], "yes")
        await share(relay, MAPLE[0], "Yes, gladly")
        await share(relay, OAK[0], "yes")  # again: no second exchange
        received = await wait_for_notices(sink, 4 + 1 + 2 + 1)
        exchanged = {r.rcpt_tos[0]: r.message for r in received if "Staying in touch with" in str(r.message["Subject"])}
        assert set(exchanged) == {OAK[0], MAPLE[0]}
        assert "Maple is Jane Doe, and can be reached at maple.student@mail.example.org" in words(exchanged[OAK[0]])
        assert "Oak is Josef Brandt, and can be reached at oak.mentor@uni.example.net" in words(exchanged[MAPLE[0]])
        assert len(await events_of(relay, "contact_exchange.done")) == 1
        assert [e["detail"]["answer"] for e in await events_of(relay, "contact_exchange.consent")] == [
            "yes", "yes", "yes"]
        assert pair.id == (await events_of(relay, "contact_exchange.done"))[0]["pair_id"]


async def test_no_exchange_when_one_declines(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await ended_pair(layout, relay, clock)
        await share(relay, OAK[0], "yes")
        await share(relay, MAPLE[0], "no")
        received = await wait_for_notices(sink, 4 + 2)  # the four of the ending, two answers
        answers = sorted((r.rcpt_tos[0], str(r.message["Subject"])) for r in received
                         if "Staying in touch" in str(r.message["Subject"]))
        assert answers == sorted([(OAK[0], "Staying in touch: thank you"), (MAPLE[0], "Staying in touch: noted")])
        assert await events_of(relay, "contact_exchange.done") == []
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absence
        assert not [r for r in notices_in(sink) if MAPLE[0] in words(r.message) or OAK[0] in words(r.message)]


async def test_no_exchange_when_the_program_forbids_it(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30")  # contact_exchange defaults to false
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        await run_until(relay, clock, END + timedelta(hours=9))
        received = await wait_for_notices(sink, 4)
        assert not [r for r in received if "share@" in r.message.get_content()]
        await share(relay, OAK[0], "yes")
        await share(relay, MAPLE[0], "yes")
        refused = await wait_for_notices(sink, 6)
        answers = [(r.rcpt_tos[0], str(r.message["Subject"]), words(r.message)) for r in refused[4:]]
        assert sorted(a[:2] for a in answers) == sorted([(OAK[0], "Staying in touch: not possible"),
                                                         (MAPLE[0], "Staying in touch: not possible")])
        assert all("this program does not pass on contact details" in a[2] for a in answers)
        assert await events_of(relay, "contact_exchange.consent", "contact_exchange.done") == []
        assert [e["kind"] for e in await events_of(relay, "share.unclear")] == ["share.unclear", "share.unclear"]


async def concern(relay: Relay, sender: str) -> None:
    port = relay.settings.relay.smtp.port
    to = f"concern@{DOMAIN}"
    code, text = await send(port, simple_message(sender, to, "He asked me to keep a secret", "Uneasy."), sender, to)
    assert code == 250, text


async def assert_no_exchange_after_a_concern(relay: Relay, layout: Layout, sink: Sink) -> None:
    """Neither the ending notices nor the farewells offer share@; both answer yes; neither learns anything."""
    await share(relay, OAK[0], "yes Maple")
    await share(relay, MAPLE[0], "yes")
    await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absences
    received = notices_in(sink)
    ending = [r for r in received if "ends on" in str(r.message["Subject"]) or "goodbye" in str(r.message["Subject"])]
    assert sorted(r.rcpt_tos[0] for r in ending) == sorted([OAK[0], MAPLE[0]] * 2)
    assert not [r for r in ending if "share@" in words(r.message)]
    answers = [r for r in received if str(r.message["Subject"]) == "Staying in touch: not possible"]
    assert sorted(r.rcpt_tos[0] for r in answers) == sorted([OAK[0], MAPLE[0]])
    for answer in answers:  # the same words as for any conversation without the exchange: no word of a concern
        assert "the program does not pass on contact details for this conversation" in words(answer.message)
        assert "concern" not in words(answer.message).lower()
    assert not [r for r in received if str(r.message["Subject"]).startswith("Staying in touch with")]
    assert not [r for r in received if MAPLE[1] in words(r.message) or OAK[1] in words(r.message)]
    assert await events_of(relay, "contact_exchange.consent", "contact_exchange.done") == []


async def test_no_exchange_for_a_pair_paused_by_a_concern_when_its_end_date_passes(layout: Layout,
                                                                                  sink: Sink) -> None:
    """A child writes to concern@ (the pair is paused) and the end date passes: the sweep marks the pair
    ended, and with the pause gone from its status the exchange must still never be offered nor carried out."""
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        await concern(relay, MAPLE[0])
        await run_until(relay, clock, END + timedelta(hours=9))
        await assert_no_exchange_after_a_concern(relay, layout, sink)
        [ended] = await events_of(relay, "pair.ended")
        assert ended["detail"]["paused"] is True  # the record keeps that it ended paused


async def test_no_exchange_after_a_concern_even_once_the_pair_was_resumed(layout: Layout, sink: Sink) -> None:
    """The coordinator resumes the pair after looking into the concern: the conversation goes on, but the
    concern was raised, and the end offers no exchange (as `pair close` would not)."""
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await concern(relay, MAPLE[0])
        resumed = await acli(layout, "pair", "resume", str(pair.id))
        assert resumed.returncode == 0, resumed.stderr
        await run_until(relay, clock, END + timedelta(hours=9))
        assert await events_of(relay, "pair.resumed") != []
        await assert_no_exchange_after_a_concern(relay, layout, sink)


async def test_a_yes_is_for_the_partner_it_names(layout: Layout, sink: Sink) -> None:
    """Oak mentors Maple and Willow, both ending the same day. Willow says yes. Oak's bare "yes" cannot
    say whom it is for: nothing is recorded and Oak is asked to name the partner. Oak's "yes" naming
    Maple is for Maple alone: Willow learns nothing of Oak until Oak says yes to Willow."""
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        maple = await enrol(relay, clock, OAK, MAPLE)
        willow = await enrol(relay, clock, OAK, WILLOW)
        await run_until(relay, clock, END + timedelta(hours=9))
        await wait_for_notices(sink, 8)  # the ending notice and the farewell, to each of four
        farewells = [(r.rcpt_tos[0], words(r.message)) for r in notices_in(sink)
                     if "goodbye" in str(r.message["Subject"])]

        def exchanged() -> list[tuple[str, str]]:
            return sorted((r.rcpt_tos[0], str(r.message["Subject"])) for r in notices_in(sink)
                          if str(r.message["Subject"]).startswith("Staying in touch with"))

        await share(relay, WILLOW[0], "yes")
        await share(relay, OAK[0], "yes")
        asked = (await wait_for_notices(sink, 10))[-1]
        assert asked.rcpt_tos == [OAK[0]] and str(asked.message["Subject"]) == "Staying in touch: with whom?"
        assert "(Maple, Willow)" in words(asked.message) and 'for example "yes Maple"' in words(asked.message)
        assert [e["pair_id"] for e in await events_of(relay, "contact_exchange.consent")] == [willow.id]

        await share(relay, OAK[0], "Yes -- Maple, let us keep in touch")
        confirmed = (await wait_for_notices(sink, 11))[-1]
        assert confirmed.rcpt_tos == [OAK[0]] and "keep in touch with Maple" in words(confirmed.message)
        await eventually(lambda: nothing_queued(layout), timeout=20)  # all of it out before the absence
        assert exchanged() == []
        consents = [(e["pair_id"], e["detail"]["role"]) for e in await events_of(relay, "contact_exchange.consent")]
        assert consents == [(willow.id, "mentee"), (maple.id, "mentor")]

        await share(relay, MAPLE[0], "yes")
        await eventually(lambda: len(exchanged()) == 2)
        assert exchanged() == [(MAPLE[0], "Staying in touch with Oak"), (OAK[0], "Staying in touch with Maple")]
        port = relay.settings.relay.smtp.port
        to = SHARE  # named in the text this time, any case: "willow"
        code, text = await send(port, simple_message(OAK[0], to, "Re: yes", "yes, gladly: willow too"), OAK[0], to)
        assert code == 250, text
        await eventually(lambda: len(exchanged()) == 4)
        assert (WILLOW[0], "Staying in touch with Oak") in exchanged()
        done = [e["pair_id"] for e in await events_of(relay, "contact_exchange.done")]
        assert sorted(done) == sorted([maple.id, willow.id])
        # the offer says how to name the partner, so that a mentor of several gets it right the first time
        offers = sorted((rcpt, re.search(r'the subject "(yes [^"]+)" \(or "(no [^"]+)"\)', text).groups())
                        for rcpt, text in farewells)  # type: ignore[union-attr]
        assert offers == sorted([(MAPLE[0], ("yes Oak", "no Oak")), (WILLOW[0], ("yes Oak", "no Oak")),
                                 (OAK[0], ("yes Maple", "no Maple")), (OAK[0], ("yes Willow", "no Willow"))])


async def test_too_early_to_share(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30", contact_exchange=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        await share(relay, OAK[0], "yes")
        note = (await wait_for_notices(sink, 1))[0]
        assert "your conversation has not reached its end yet" in words(note.message)
        assert await events_of(relay, "contact_exchange.consent") == []


async def test_away_after_the_end_is_answered_not_announced(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30")
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        await run_until(relay, clock, END + timedelta(hours=9))
        await wait_for_notices(sink, 4)
        away = f"away@{DOMAIN}"
        port = relay.settings.relay.smtp.port
        code, text = await send(port, simple_message(OAK[0], away, "until 2026-07-20", "."), OAK[0], away)
        assert code == 250, text
        note = (await wait_for_notices(sink, 5))[4]
        assert note.rcpt_tos == [OAK[0]] and "your conversation has ended" in str(note.message["Subject"])
        assert await events_of(relay, "away.set") == []


async def test_the_farewell_carries_the_conversation_when_the_program_says_so(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30", send_conversation_at_end=True)
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        await write(relay, pair, "mentee", "Hello Oak")
        clock.advance(timedelta(hours=1))
        await write(relay, pair, "mentor", "Re: Hello Oak")
        # both copies delivered (the worker runs in real time, the sweeps on the injected clock)
        await eventually(lambda: len([r for r in sink.received if NOTICES_FROM not in str(r.message["From"])]) == 2)
        await run_until(relay, clock, END + timedelta(hours=9))
        received = await wait_for_notices(sink, 4)
    farewell = next(r.message for r in received if r.rcpt_tos == [MAPLE[0]] and "goodbye" in str(r.message["Subject"]))
    [attachment] = list(farewell.iter_attachments())
    assert attachment.get_content_type() == "application/mbox"
    assert attachment.get_filename() == "conversation-Maple.mbox"
    assert "Your conversation is attached to this message" in words(farewell.get_body(preferencelist=("plain",)))
    data = attachment.get_content()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "conversation.mbox"
        path.write_bytes(data)
        box = mailbox.mbox(str(path))
        subjects = [str(message["Subject"]) for message in box]
        box.close()
    assert subjects == ["Hello Oak", "Re: Hello Oak"]  # both directions, in order
    text = data.decode("utf-8", "replace")
    for secret in (OAK[0], MAPLE[0], OAK[1], MAPLE[1]):
        assert secret not in text  # anonymised, as the participants saw it


async def test_no_attachment_unless_the_program_asks_for_it(layout: Layout, sink: Sink) -> None:
    write_program(layout, end_date="2026-06-30")
    clock = FixedClock(START)
    async with running(layout, clock) as relay:
        await ended_pair(layout, relay, clock)
        received = await wait_for_notices(sink, 4)
    farewells = [r.message for r in received if "goodbye" in str(r.message["Subject"])]
    assert len(farewells) == 2 and all(list(m.iter_attachments()) == [] for m in farewells)


async def test_the_farewell_conversation_carries_only_cleaned_copies(layout: Layout, sink: Sink) -> None:
    """Issue 11: the mbox of the farewell holds what was delivered, so it inherits the cleaning: an HTML
    signature with the name and a LinkedIn link, and a JPEG with EXIF Artist/Copyright/GPS and XMP creator."""
    import io
    from email.message import EmailMessage

    from PIL import Image

    from relay.anonymize.message import parse
    from tests.decode_all import leaks
    from tests.test_leak_vectors import Member, _image

    write_program(layout, end_date="2026-06-30", send_conversation_at_end=True)
    clock = FixedClock(START)
    jane = Member(MAPLE[1], MAPLE[0], MAPLE[2], "")
    needles = [MAPLE[0], MAPLE[0].partition("@")[0], "mail.example.org", "Jane", "Doe", "jane-doe-4b2a91",
               OAK[0], OAK[0].partition("@")[0], "uni.example.net", "Josef", "Brandt"]
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        to = pair.partner_of(pair.member("mentee")).alias_address(DOMAIN)
        message = EmailMessage()
        message["From"] = f"{MAPLE[1]} <{MAPLE[0]}>"
        message["To"] = to
        message["Subject"] = "My photo of the experiment"
        message.set_content("Here is the photo.\n\n--\nJane Doe\n")
        message.add_alternative('<div dir="ltr">Here is the photo.<br><div class="gmail_signature"><b>Jane Doe</b>'
                                '<br><a href="https://www.linkedin.com/in/jane-doe-4b2a91/">LinkedIn</a></div></div>',
                                subtype="html")
        message.add_attachment(_image(jane, "JPEG"), maintype="image", subtype="jpeg", filename="IMG_2041.jpg")
        assert leaks(message.as_bytes(), needles), "the message carries the identity to begin with"
        code, text = await send(relay.settings.relay.smtp.port, message.as_bytes(), MAPLE[0], to)
        assert code == 250, text
        clock.advance(timedelta(hours=1))
        await write(relay, pair, "mentor", "Re: My photo of the experiment")
        await eventually(lambda: len([r for r in sink.received if NOTICES_FROM not in str(r.message["From"])]) == 2)
        await run_until(relay, clock, END + timedelta(hours=9))
        received = await wait_for_notices(sink, 4)
    farewells = [r.message for r in received if "goodbye" in str(r.message["Subject"])]
    assert len(farewells) == 2
    for farewell in farewells:
        [attachment] = list(farewell.iter_attachments())
        data = attachment.get_content()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "conversation.mbox"
            path.write_bytes(data)
            box = mailbox.mbox(str(path))
            copies = [bytes(message) for message in box]
            box.close()
        assert len(copies) == 2
        for copy in copies:
            found = leaks(copy, needles)
            assert not found, "\n".join(found)
        photo = next(p for p in parse(copies[0]).walk() if p.get_content_type() == "image/jpeg")
        with Image.open(io.BytesIO(photo.get_content())) as image:
            assert image.size == (32, 24) and not dict(image.getexif()) and "xmp" not in image.info
