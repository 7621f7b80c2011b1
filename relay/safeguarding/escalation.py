"""A moderator's "Escalate to safeguarding lead": the lead (and the coordinator, who must know too) get an
URGENT mail naming the moderator, their note, handles, pair, program, findings and a console link. The
message stays held and shows as escalated; an escalation counts as acting on it, so the urgent follow-up
(relay.safeguarding.sweep) does not repeat it. Without a lead, the coordinator alone is told. One
transaction and an event with the moderator's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from relay import notices as outbound_notices
from relay.clock import Clock
from relay.config import Settings
from relay.holdqueue import actions as review
from relay.safeguarding import notices
from relay.safeguarding.sweep import describe
from relay.store import events
from relay.store import held as held_store
from relay.store.database import transaction


@dataclass(frozen=True)
class Escalated:
    status: str  # escalated | not-held
    told: list[str] = field(default_factory=list)


async def escalate_to_lead(settings: Settings, engine: AsyncEngine, clock: Clock, message_id: str, moderator: str,
                           note: str) -> Escalated:
    now = clock.now()
    async with transaction(engine) as connection:
        item, _, pair = await review.load_any(connection, message_id)
        if item["state"] != "held":
            return Escalated("not-held")
        mails = notices.escalation(settings, await describe(connection, item), moderator, note, now)
        if not mails:
            raise review.ReviewError(f"program {item['program_id']!r} is not configured: nobody to tell")
        for mail in mails:
            await outbound_notices.queue(connection, mail, domain=settings.relay.domain, now=now, pair_id=pair.id,
                                         message_id=message_id)
        await held_store.mark_escalated(connection, message_id, moderator, now)
        await events.record(connection, "escalated_to_lead", now, actor=moderator, pair_id=pair.id,
                            message_id=message_id, to=[m.rcpt for m in mails],
                            lead=notices.lead_of(settings, item["program_id"]), note=note)
    return Escalated("escalated", [m.rcpt for m in mails])
