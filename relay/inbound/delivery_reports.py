"""Delivery reports (bounces) to the relay's signed bounce addresses, bounce+<entry>.<signature>@domain.

RCPT: the address must carry a valid signature of an outbound entry that exists (else 550, recorded).
DATA: the report is read with relay/bounces/reports.py and recorded against that entry; it is never
archived as a message or passed on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from relay.bounces import entry_of
from relay.bounces.reports import classify, record_report
from relay.inbound import refusals
from relay.inbound.context import Context
from relay.inbound.refusals import Refusal
from relay.store.outbound import entry_exists

log = logging.getLogger("relay.intake")


@dataclass(frozen=True)
class BounceTarget:
    """A signed bounce address: the delivery report concerns this outbound queue entry."""

    entry_id: str


async def check(context: Context, local: str, current: object | None, detail: dict[str, Any]) -> BounceTarget:
    entry_id = entry_of(local, await context.verp_secret())
    if entry_id is not None:
        async with context.engine.connect() as connection:
            if not await entry_exists(connection, entry_id):
                entry_id = None
    if entry_id is None:
        raise await context.refuse(Refusal(550, "5.7.1", "No such bounce address here.", "forged_bounce"), **detail)
    if current is not None and current != BounceTarget(entry_id):
        raise await context.refuse(refusals.one_target_only("One report per bounce address, please."), **detail)
    return BounceTarget(entry_id)


async def take(context: Context, raw: bytes, target: BounceTarget, remote: str | None) -> str:
    """Record the report against its entry (and tell whom it concerns); returns `report-<entry>`."""
    now = context.clock.now()
    result = classify(raw)
    notified = await context.committer.run(lambda c: record_report(
        c, context.settings, entry_id=target.entry_id, result=result, now=now, remote=remote))
    if notified:
        context.on_queued()
    log.info("outbound=%s delivery report from %s: %s", target.entry_id, remote, result)
    return f"report-{target.entry_id}"
