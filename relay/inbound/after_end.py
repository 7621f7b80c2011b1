"""Mail from a member to the alias of a pair that has ended (its end date passed) or was closed (`pair close`,
`program end`): archived, not delivered; the sender gets a polite note (at most weekly,
relay/nudges/lifecycle.after_end), none for an automatic reply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from relay import ids
from relay.archive import chain
from relay.inbound.aliases import Target
from relay.inbound.context import Context
from relay.nudges import lifecycle
from relay.store.messages import Accepted, AcceptOutcome, basis, store_accepted

log = logging.getLogger("relay.intake")


async def archive_ended(context: Context, accepted: Accepted,
                        tell: Callable[[Any], Awaitable[object]]) -> AcceptOutcome:
    """Archive mail to an ended or closed conversation (pair or group; not delivered) and, unless it is a
    resend, queue the sender's polite note (`tell`, given the connection) in the same transaction. The
    archive chain's hash of a large message is made in a thread, not on the loop."""
    async def job(connection: Any) -> AcceptOutcome:
        outcome = await store_accepted(connection, accepted)
        if outcome.written:
            await tell(connection)
        return outcome

    async with chain.prehashed(accepted.raw):
        outcome: AcceptOutcome = await context.committer.run(job)
    await context.unchanged(outcome, accepted.pair_id, accepted.remote_addr)
    context.on_queued()
    return outcome


async def take(context: Context, raw: bytes, mail_from: str, remote: str | None, target: Target,
               own_id: str | None, now: datetime, subject: str | None, *, automatic: bool, digest: str) -> str:
    """Mail to an ended or closed pair: archived, not delivered; the sender gets a polite note (weekly at most).
    `digest`: the body hash read in the worker (relay/inbound/header.body_hash)."""
    pair, sender, recipient = target.pair, target.sender, target.recipient
    accepted = Accepted(
        id=ids.queue_id(), pair_id=pair.id, sender_id=sender.id, sender_role=sender.role,
        recipient_id=recipient.id, envelope_from=mail_from, remote_addr=remote, original_message_id=own_id,
        body_hash=digest, subject=subject, raw=raw, decision="ended",
        reasons=[{"rule": "pair_ended"}], received_at=now, outbound=None,
        duplicate_window=context.settings.relay.smtp.duplicate_window, domain=context.domain,
        basis=basis(pair.status, sender, recipient),
    )

    outcome = await archive_ended(context, accepted, lambda connection: lifecycle.after_end(
        connection, context.settings, pair, sender, accepted.id, now, automatic=automatic))
    log.info("queue_id=%s to the %s pair %s: archived, not delivered", outcome.id, pair.status, pair.id)
    return outcome.id
