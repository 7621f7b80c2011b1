"""The subject a participant typed never reaches staff as typed (docs/privacy.md: mail about a participant to
staff names handles, never a real name or address). Staff mail quotes the anonymised copy's subject, where the
members' names and addresses are already handles and aliases, with any other address and phone number hidden:
the moderators' held alert, the console's "Escalate to coordinator", the hold sweep's digest, reminder and
coordinator escalation, and the report of an automatic rejection. The held page's <title> (kept in the
browser's history) names the message by its id. Real relay, real SMTP sinks, real HTTP."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.holdqueue.sweeps import sweep
from tests.consolekit import MODERATOR_MAILBOX, add_moderator, csrf_of, prepare, serving, session, write
from tests.support import MENTEE, Layout, Received, Sink, acreate_pair, eventually

SUBJECT = "Jane Doe (jane.doe@mail.example.org, 555-201-3344) homework"
SECRETS = ("Jane", "Doe", MENTEE["email"], "jane.doe", "555-201-3344", "201-3344")
COORDINATOR = "coordinator@school.example"


def _mail_to(sink: Sink, rcpt: str) -> list[Received]:
    return [r for r in sink.received if r.rcpt_tos == [rcpt]]


def _no_secret(mail: Received) -> str:
    text = mail.message.get_body(("plain",)).get_content()
    for secret in SECRETS:
        assert secret not in text and secret not in str(mail.message["Subject"]), (secret, text)
    assert "homework" in text  # the subject is still quoted, scrubbed: Maple, the alias, "(hidden)"
    return text


async def test_staff_mail_and_the_held_page_title_quote_no_subject_as_typed(layout: Layout, sink: Sink) -> None:
    prepare(layout)  # every message held, the moderators told at once
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, SUBJECT, "Can we keep this secret?")
        alert = _no_secret((await eventually(lambda: _mail_to(sink, MODERATOR_MAILBOX)))[0])
        assert "Maple" in alert and "(hidden)" in alert
        async with session(layout, "ana") as client:
            page = await client.get(f"/held/{held_id}")
            title = page.text.split("<title>")[1].split("</title>")[0]
            assert title.startswith(f"Held message {held_id}") and "Jane" not in title and "555" not in title
            answer = await client.post(f"/held/{held_id}/escalate", data={
                "csrf_token": csrf_of(page.text), "to": "coordinator", "note": "please look"})
            assert answer.status_code == 200
        _no_secret((await eventually(lambda: _mail_to(sink, COORDINATOR)))[0])


POLICY = f"""
    default_action: hold
    review_within: 12h
    escalate_after: 24h
    notify_rejections: true
    rules:
      keywords:
        - name: banned
          action: reject
          words: [forbidden]
    notices:
      held: null
      rejected: null
    moderators:
      notify: [{MODERATOR_MAILBOX}]
"""


async def test_the_hold_sweeps_and_the_rejection_report_quote_no_subject_as_typed(layout: Layout,
                                                                                  sink: Sink) -> None:
    """The automatic rejection's report (at once), then the digest-less queue's reminder and the
    coordinator's "not reviewed in time" mail, each on the relay's injected clock."""
    prepare(layout)
    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent(POLICY))
    clock = FixedClock(datetime.now(UTC))
    async with serving(layout, clock) as relay:
        pair = await acreate_pair(layout)
        await write(layout, pair, SUBJECT, "a forbidden word")  # rejected by the policy: reported at once
        await write(layout, pair, SUBJECT + " again", "a question")  # held: the moderators told at once
        mails = await eventually(lambda: len(_mail_to(sink, MODERATOR_MAILBOX)) >= 2 and
                                 _mail_to(sink, MODERATOR_MAILBOX))
        for mail in mails:
            _no_secret(mail)
        assert any("rejected automatically" in str(m.message["Subject"]) for m in mails)
        start = clock.now()
        for offset, rcpt in ((timedelta(hours=12, minutes=1), MODERATOR_MAILBOX),
                             (timedelta(hours=36, minutes=1), COORDINATOR)):
            before = len(_mail_to(sink, rcpt))
            clock.advance(start + offset - clock.now())
            report = await sweep(relay.settings, relay.engine, clock, relay.intake.policies)
            assert report.mails == [rcpt]
            relay.worker.wake()
            mail = (await eventually(lambda rcpt=rcpt, before=before: _mail_to(sink, rcpt)[before:]))[0]
            text = _no_secret(mail)
            assert "Maple" in text
