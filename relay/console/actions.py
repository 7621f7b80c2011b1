"""The console's decisions beyond release and reject (which are relay.holdqueue.actions, shared with
the CLI): redact-and-release and escalate-to-coordinator. Each is one transaction and an event with the
moderator's name."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from relay import notices
from relay.clock import Clock
from relay.config import Settings
from relay.console.message_view import edited_message
from relay.holdqueue import actions as review
from relay.holdqueue.notify import shown_subject
from relay.holdqueue.parties import parties
from relay.links import console_base
from relay.notices.programs import for_staff, staff_language
from relay.notices.when import format_when
from relay.store import events
from relay.store import held as held_store
from relay.store.database import transaction
from relay.store.edits import save_edit


@dataclass(frozen=True)
class Escalated:
    status: str  # escalated | not-held
    coordinator: str | None


async def redact_and_release(settings: Settings, engine: AsyncEngine, clock: Clock, message_id: str,
                             moderator: str, text: str) -> review.Outcome:
    """Store the moderator's edit as a new record linked to the original (which stays as received), then
    release through review.release, which builds the delivered copy from the newest edit."""
    now = clock.now()
    async with transaction(engine) as connection:
        item, row, _ = await review.load_any(connection, message_id)
        if item["state"] != "held":
            return review.Outcome(f"already-{item['state']}", item["approvals"], item["release_requires"])
        edit_id = await save_edit(connection, message_id, edited_message(row.raw, text), moderator, now)
        await events.record(connection, "edited", now, actor=moderator, pair_id=item["pair_id"],
                            message_id=message_id, edit_id=edit_id, characters=len(text))
    return await review.release(settings, engine, clock, message_id, moderator)


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

