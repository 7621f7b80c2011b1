"""Automatic replies (out-of-office, vacation responders) from a member to their group's alias or to a
private alias in it: archived, never forwarded; the members it was addressed to are told once that the
member is away — at most once per relay/autoreply.NOTICE_EVERY for that member in that group (a notice
key, so two instances tell them once), and not at all while away mode (relay/inbound/program/away.py)
says the member is away.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from relay import ids, notices
from relay.autoreply import NOTICE_EVERY
from relay.inbound.context import Context
from relay.inbound.header import body_hash
from relay.notices.programs import for_participant
from relay.nudges import keys
from relay.nudges.timing import is_away, zone_of
from relay.store import events
from relay.store.conversations import Conversation, Member
from relay.store.messages import Accepted, AcceptOutcome, basis, store_accepted

log = logging.getLogger("relay.intake")


async def take(context: Context, raw: bytes, mail_from: str, remote: str | None, group: Conversation,
               sender: Member, addressed: Member | None, recipients: list[Member], own_id: str | None,
               signal: str, now: datetime, subject: str | None) -> str:
    """Archive an automatic reply to a group without forwarding it; tell its recipients once per period."""
    program = context.settings.programs.get(group.program_id)
    away_mode = program is not None and is_away(sender, now, zone_of(sender, program))
    program_name = program.name if program else group.program_id
    accepted = Accepted(
        id=ids.queue_id(), pair_id=group.id, sender_id=sender.id, sender_role=sender.role,
        recipient_id=addressed.id if addressed else None, envelope_from=mail_from, remote_addr=remote,
        original_message_id=own_id, body_hash=body_hash(raw), subject=subject, raw=raw, decision="autoreply",
        reasons=[{"rule": "auto_reply", "match": signal}], received_at=now, outbound=None,
        duplicate_window=context.settings.relay.smtp.duplicate_window, domain=context.domain,
        basis=basis(group.status, sender, *recipients),
    )
    period = int(now.timestamp() // NOTICE_EVERY.total_seconds())
    told: list[str] = []

    async def job(connection: Any) -> AcceptOutcome:
        outcome = await store_accepted(connection, accepted)
        if not outcome.written or away_mode or not await keys.claim(
                connection, f"group_away:{group.id}:{sender.id}:{period}", kind="away_notice", pair_id=group.id,
                at=now):
            return outcome
        for member in recipients:
            mail = for_participant(context.settings, program, member, "partner_away", program_name=program_name,
                                   away_handle=f"{sender.handle} ({group.name or 'group'})")
            notice = notices.compose(domain=context.domain, program_name=program_name, to=member.email, now=now,
                                     subject=mail.subject, body=mail.text, language=mail.language,
                                     reply_to=notices.help_address(context.domain))
            await notices.queue(connection, notice, domain=context.domain, now=now, pair_id=group.id,
                                message_id=accepted.id)
            told.append(member.handle)
        await events.record(connection, "away_notice", now, pair_id=group.id, message_id=accepted.id,
                            away_role=sender.role, away_handle=sender.handle, told=told)
        return outcome

    outcome: AcceptOutcome = await context.committer.run(job)
    await context.unchanged(outcome, group.id, remote)
    if told:
        context.on_queued()
    log.info("queue_id=%s automatic reply from %s to group %s archived, not forwarded (%s)%s", outcome.id,
             sender.role, group.id, signal.split(":")[0], f"; {len(told)} members told" if told else "")
    return outcome.id
