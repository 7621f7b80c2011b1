"""The console's decisions beyond release and reject (which are relay.holdqueue.actions, shared with
the CLI): redact-and-release (relay.console.redaction, then a release) and escalate-to-coordinator. Each
change is a transaction and an event with the moderator's name."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from relay import notices
from relay.clock import Clock
from relay.config import Settings
from relay.console import redaction
from relay.holdqueue import actions as review
from relay.holdqueue.notify import shown_subject
from relay.holdqueue.parties import parties
from relay.links import console_base
from relay.notices.programs import for_staff, staff_language
from relay.notices.when import format_when
from relay.store import events
from relay.store import held as held_store
from relay.store.database import transaction


@dataclass(frozen=True)
class Escalated:
    status: str  # escalated | not-held
    coordinator: str | None


async def redact_and_release(settings: Settings, engine: AsyncEngine, clock: Clock, message_id: str,
                             moderator: str, text: str, offload: review.Offload = review.in_thread) -> review.Outcome:
    """Read the edit with the policy's rules and store it as a new record linked to the original (which stays
    as received), clearing the approvals given before it (relay.console.redaction: refused with the findings
    when it has what an edit may not take past the moderators); then release through review.release, which
    counts this moderator's approval of the edit and builds the delivered copy from the newest edit."""
    saved, edit_id = await redaction.save(settings, engine, clock.now(), message_id, moderator, text, offload)
    if saved != "saved":
        async with engine.connect() as connection:
            item, _, _ = await review.load_any(connection, message_id)
        return review.Outcome(saved, item["approvals"], item["release_requires"])
    return await review.release(settings, engine, clock, message_id, moderator, offload, seen_edit=edit_id)


async def escalate(settings: Settings, engine: AsyncEngine, clock: Clock, message_id: str, moderator: str,
                   note: str) -> Escalated:
    """Tell the program's coordinator that this held message needs them; it stays held."""
    now = clock.now()
    async with transaction(engine) as connection:
        item, row, pair = await review.load_any(connection, message_id)
        if item["state"] != "held":
            return Escalated("not-held", None)
        program = settings.programs.get(item["program_id"])
        if program is None:
            raise review.ReviewError(f"program {item['program_id']!r} is not configured: no coordinator to tell")
        between = parties(pair, row.sender_id, row.recipient_id)
        mail = for_staff(settings, program, "coordinator_console_escalation", moderator=moderator, note=note,
                         program_name=program.name, subject=shown_subject(item),
                         sender_handle=between.sender.handle, recipient_handle=between.to_text,
                         group_name=between.group_name,
                         pair_id=pair.id, held_at=format_when(item["held_at"], staff_language(program),
                                                              program.timezone),
                         reasons=item["reasons"], console_url=console_base(settings), message_id=message_id)
        notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=program.coordinator,
                                 subject=mail.subject, body=mail.text, now=now, language=mail.language)
        await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id,
                            message_id=message_id)
        await held_store.mark_escalated(connection, message_id, moderator, now)
        await events.record(connection, "escalated", now, actor=moderator, pair_id=pair.id, message_id=message_id,
                            coordinator=program.coordinator, note=note)
    return Escalated("escalated", program.coordinator)

