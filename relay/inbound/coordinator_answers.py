"""A coordinator's answer to a participant's help@ or concern@ mail, sent to the signed reply address
help+m<member>.<signature>@domain (relay/inbound/program/help.py made it the Reply-To).

RCPT: the signature must be valid and the envelope sender the coordinator of the member's program.
DATA: the From: must be the coordinator too; the answer is passed on to the member from help@ (never
with the coordinator's address); an automatic reply is recorded and dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from relay.inbound import refusals
from relay.inbound.context import Context
from relay.inbound.program import help as program_help
from relay.inbound.program.help import AnswerTarget
from relay.inbound.refusals import Refusal
from relay.store.events import record
from relay.store.pairs import email_key

log = logging.getLogger("relay.intake")


def _forged() -> Refusal:
    return Refusal(550, "5.1.1", "No such address here.", "forged_reply")


def _coordinator_only() -> Refusal:
    return Refusal(550, "5.7.1", "This address accepts mail only from the program's coordinator.", "stranger")


async def check(context: Context, local: str, mail_from: str, current: object | None,
                detail: dict[str, Any]) -> AnswerTarget:
    """A signed help+ address: only the coordinator of the member's program may answer through it."""
    member_id = program_help.member_of_reply(local, await context.verp_secret())
    found = None
    if member_id is not None:
        async with context.engine.connect() as connection:
            found = await program_help.member_pair(connection, member_id)
    if found is None:
        raise await context.refuse(_forged(), **detail)
    pair, member = found
    program = context.settings.programs.get(pair.program_id)
    if program is None or pair.status == "closed" or email_key(mail_from) != email_key(program.coordinator):
        raise await context.refuse(_coordinator_only(), pair_id=pair.id, **detail)
    target = AnswerTarget(member.id)
    if current is not None and current != target:
        raise await context.refuse(refusals.one_target_only("One answer per address, please."),
                                   pair_id=pair.id, **detail)
    return target


async def take(context: Context, raw: bytes, mail_from: str, target: AnswerTarget, remote: str | None) -> str:
    """The coordinator's answer to a participant's help mail: passed on from help@."""
    now = context.clock.now()
    detail: dict[str, Any] = {"mail_from": mail_from, "remote": remote}
    async with context.engine.connect() as connection:
        found = await program_help.member_pair(connection, target.member_id)
    if found is None:
        raise await context.refuse(_forged(), **detail)
    pair, member = found
    program = context.settings.programs[pair.program_id]
    header = await context.header(raw, detail, whole=True)
    header_from = header.sender
    if header_from is None or email_key(header_from) != email_key(program.coordinator):
        raise await context.refuse(_coordinator_only(), pair_id=pair.id, header_from=header_from, **detail)
    if header.looped(context.domain):
        raise await context.refuse(refusals.loop(), pair_id=pair.id, **detail)
    subject = header.subject or ""
    if header.auto_reply:
        await context.committer.run(lambda c: record(c, "help.auto_reply", now, pair_id=pair.id, subject=subject))
        return f"answer-{target.member_id}"
    await context.committer.run(
        lambda c: program_help.answer(c, context.settings, pair, member, header.text, subject, now))
    context.on_queued()
    log.info("coordinator answered the %s of pair %s through the relay", member.role, pair.id)
    return f"answer-{target.member_id}"
