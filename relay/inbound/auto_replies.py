"""Automatic replies (out-of-office, vacation responders) from a member to their partner's alias:
archived, never forwarded; the partner is told that the member is away, at most once per
relay/autoreply.NOTICE_EVERY, and not at all when away mode (relay/inbound/program/away.py) told them.
Recognising an automatic reply is relay/autoreply.py's job.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from relay import ids
from relay.archive import chain
from relay.autoreply import NOTICE_EVERY
from relay.inbound.aliases import Target
from relay.inbound.context import Context
from relay.notices import as_entry, compose, help_address
from relay.notices.programs import for_participant
from relay.nudges.timing import is_away, zone_of
from relay.store.committer import Merged
from relay.store.events import event_values, happened_since
from relay.store.messages import Accepted, AcceptOutcome, OutboundEntry, basis, store_accepted_many

log = logging.getLogger("relay.intake")


async def take(context: Context, raw: bytes, mail_from: str, remote: str | None, target: Target,
               own_id: str | None, signal: str, now: datetime, subject: str | None, digest: str) -> str:
    """Archive an automatic reply without forwarding it; tell the partner, at most once per period."""
    pair, sender, recipient = target.pair, target.sender, target.recipient
    async with context.engine.connect() as connection:
        told = await happened_since(connection, "away_notice", pair.id, now - NOTICE_EVERY)
    program = context.settings.programs.get(pair.program_id)
    if program is not None and is_away(sender, now, zone_of(sender, program)):
        told = True  # the partner already knows from away mode (relay/inbound/program/away.py)
    queue_id = ids.queue_id()
    notices: list[OutboundEntry] = []
    extra: list[dict[str, Any]] = []
    if not told:
        program_name = program.name if program else pair.program_id
        mail = for_participant(context.settings, program, recipient, "partner_away", away_handle=sender.handle,
                               program_name=program_name)
        notice = compose(domain=context.domain, program_name=program_name, to=recipient.email,
                         subject=mail.subject, now=now, body=mail.text, language=mail.language,
                         reply_to=help_address(context.domain))
        notices.append(as_entry(notice))
        extra.append(event_values("away_notice", now, pair_id=pair.id, message_id=queue_id,
                                  away_role=sender.role, told_role=recipient.role))
    accepted = Accepted(
        id=queue_id, pair_id=pair.id, sender_id=sender.id, sender_role=sender.role, recipient_id=recipient.id,
        envelope_from=mail_from, remote_addr=remote, original_message_id=own_id, body_hash=digest,
        subject=subject, raw=raw, decision="autoreply", reasons=[{"rule": "auto_reply", "match": signal}],
        received_at=now, outbound=None, duplicate_window=context.settings.relay.smtp.duplicate_window,
        domain=context.domain, notices=notices, extra_events=extra, basis=basis(pair.status, sender, recipient),
    )
    async with chain.prehashed(raw):  # the archive chain's hash of a large message: in a thread
        outcome: AcceptOutcome = await context.committer.run(Merged(store_accepted_many, accepted))
    await context.unchanged(outcome, pair.id, remote)
    if not outcome.duplicate and notices:
        context.on_queued()
    log.info("queue_id=%s automatic reply from the %s archived, not forwarded (%s)%s", outcome.id, sender.role,
             signal.split(":")[0], "; partner told" if notices else "")
    return outcome.id
