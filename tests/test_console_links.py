"""Links in the relay's mail point at console.public_url, never at the console's bind address: the
moderators' held-mail notice, their reminder, the coordinator's escalation (all from a real relay to a
real SMTP sink). Without public_url the mail names the message with no link, and check-config warns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from relay.clock import FixedClock
from tests.consolekit import MODERATOR_MAILBOX, PUBLIC_URL, prepare, serving, write
from tests.support import Layout, Sink, acli, acreate_pair, cli


def _texts(sink: Sink, address: str) -> list[str]:
    return [r.message.get_content() for r in sink.received if r.rcpt_tos == [address]]


async def test_moderator_reminder_and_escalation_mail_link_to_the_public_url(layout: Layout, sink: Sink) -> None:
    prepare(layout)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with serving(layout, clock) as relay:
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "a question", "Can we keep this secret?")
        await sink.wait_for(2)  # the sender's held notice and the moderators' alert
        notice = _texts(sink, MODERATOR_MAILBOX)[0]
        assert f"review: {PUBLIC_URL}/held/{held_id}" in notice
        clock.advance(timedelta(hours=49))  # past review_within (24 h) and escalate_after (24 h more)
        await relay.sweeper.run_once()
        await sink.wait_for(4)
    reminder = next(t for t in _texts(sink, MODERATOR_MAILBOX) if t.startswith("Reminder"))
    escalation = _texts(sink, "coordinator@school.example")[0]
    for text in (notice, reminder, escalation):
        assert f"{PUBLIC_URL}/held/{held_id}" in text
        assert "127.0.0.1" not in text and str(layout.console_port) not in text  # never the bind address


async def test_without_public_url_mail_has_no_link_and_check_config_warns(layout: Layout, sink: Sink) -> None:
    prepare(layout, public_url=None)
    checked = await acli(layout, "check-config")
    assert checked.returncode == 0
    assert "warning: console.public_url is not set" in checked.stderr
    async with serving(layout):
        pair = await acreate_pair(layout)
        held_id = await write(layout, pair, "a question", "Can we keep this secret?")
        await sink.wait_for(2)
    notice = _texts(sink, MODERATOR_MAILBOX)[0]
    assert f"review: held message {held_id} in the review console" in notice
    assert "http" not in notice and str(layout.console_port) not in notice


def test_public_url_is_checked(layout: Layout) -> None:
    layout.overrides["console"] = {"public_url": "https://review.school.example/"}
    layout.write()
    result = cli(layout, "check-config")  # behind an HTTPS proxy that is not trusted: a warning
    assert result.returncode == 0 and "warning: console.trusted_proxies is empty" in result.stderr
    layout.overrides["console"] = {"public_url": "https://review.school.example/", "trusted_proxies": ["127.0.0.1"]}
    layout.write()
    result = cli(layout, "check-config")
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    for bad, said in (("http://0.0.0.0:8025", "a listening address"), ("ftp://review.school.example", "http://"),
                      ("https://review.school.example/?x=1", "no user, query or fragment")):
        layout.overrides["console"] = {"public_url": bad}
        layout.write()
        result = cli(layout, "check-config")
        line = next(n for n, text in enumerate(layout.config.read_text().splitlines(), 1) if "public_url" in text)
        assert result.returncode == 1 and f"relay.yaml:{line}: console.public_url" in result.stderr, result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr
    layout.overrides["console"] = {"public_url": "http://localhost:8025"}  # an SSH tunnel: allowed, with a warning
    layout.write()
    result = cli(layout, "check-config")
    assert result.returncode == 0 and "opens only on this machine" in result.stderr
    assert yaml.safe_load(layout.config.read_text())["console"]["public_url"] == "http://localhost:8025"
