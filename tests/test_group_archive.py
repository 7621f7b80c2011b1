"""A group's record: `archive verify` passes after group mail, a hold and a release; `archive export
--group` (and `--pair` with a group's id) gives the group's thread once per message, anonymised; a hard
bounce on a group copy counts against the member it was for, and the writer is told by handle."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import mailbox
from pathlib import Path

from relay.service import Relay
from tests.consolekit import add_moderator
from tests.support import MENTEE, MENTOR, Layout, Sink, acli, acli_json, send, simple_message
from tests.test_bounces import events, report
from tests.test_groups import assert_no_identity, make_group
from tests.test_moderation import use_policy

HOLD_GREETINGS = "rules:\n  keywords:\n    - name: hold-me\n      action: hold\n      words: [secret]\n"


async def test_group_record_verifies_and_exports(relay: Relay, layout: Layout, sink: Sink, tmp_path: Path) -> None:
    use_policy(layout, HOLD_GREETINGS)
    group = await asyncio.to_thread(make_group, layout)
    alias, port = group["alias"], layout.smtp_port
    code, reply = await send(port, simple_message(f"José Müller <{MENTOR['email']}>", alias, "Kick-off",
                                                  "Welcome all, José here."), MENTOR["email"], alias)
    assert code == 250, reply
    await sink.wait_for(3)
    code, reply = await send(port, simple_message(MENTEE["email"], alias, "A secret", "I have a secret plan."),
                             MENTEE["email"], alias)
    assert code == 250, reply
    held_id = reply.rsplit(" ", 1)[-1]
    await add_moderator(layout, "ana", "stem")  # the command line decides as an existing console account
    released = await acli(layout, "held", "release", held_id, "--moderator", "ana")
    assert released.returncode == 0, released.stderr
    await sink.wait_for(7)  # three copies, the sender's hold notice, three copies
    copies = [r for r in sink.received if "(Robotics)" in str(r.message["From"])]
    assert len(copies) == 6
    verified = await acli(layout, "archive", "verify", "--json")
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"] is True

    for option in ("--group", "--pair"):
        target = tmp_path / f"group{option}.mbox"
        exported = await acli(layout, "archive", "export", option, str(group["id"]), "-o", str(target), "--json")
        assert exported.returncode == 0, exported.stderr
        assert json.loads(exported.stdout)["messages"] == 2
        box = mailbox.mbox(str(target))
        messages = [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.iterkeys()]
        assert [str(m["Subject"]) for m in messages] == ["Kick-off", "A secret"]
        for message in messages:
            assert_no_identity(message)  # type: ignore[arg-type]
    pair_only = await acli(layout, "archive", "export", "--group", "999", "-o", str(tmp_path / "x.mbox"))
    assert pair_only.returncode == 1 and "no group with id 999" in pair_only.stderr


async def test_a_bounce_on_a_group_copy_counts_against_that_member(relay: Relay, layout: Layout, sink: Sink) -> None:
    group = await asyncio.to_thread(make_group, layout)
    alias = group["alias"]
    code, reply = await send(layout.smtp_port, simple_message(MENTEE["email"], alias, "Our first chat", "hello"),
                             MENTEE["email"], alias)
    assert code == 250, reply
    copies = await sink.wait_for(3)
    to_oak = next(r for r in copies if r.rcpt_tos == [MENTOR["email"]])
    code, text = await send(layout.smtp_port, report(to_oak.mail_from, MENTOR["email"], "failed", "5.1.1"), "",
                            to_oak.mail_from)
    assert code == 250, text
    notice = (await sink.wait_for(4))[3]
    assert notice.rcpt_tos == [MENTEE["email"]] and notice.message["Subject"] == "Not delivered to Oak"
    assert MENTOR["email"] not in notice.raw.decode()
    (bounce,) = await events(layout, "bounce")
    assert bounce["detail"]["member"] == "mentor" and bounce["pair_id"] == group["id"]
    shown = await acli_json(layout, "group", "show", str(group["id"]), "--json")
    assert shown["id"] == group["id"]
