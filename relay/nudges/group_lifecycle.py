"""The end of a group: `group close` sends every member a farewell and tells the coordinator (in the
transaction that closes it); mail to a closed or ended group from a member is archived, not delivered,
and the sender gets a polite note at most once a week, as for an ended pair (relay/nudges/lifecycle.py).
Notices name handles and the group's name only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.notices.programs import for_participant, for_staff
from relay.nudges import keys
from relay.nudges.lifecycle import CLOSED_NOTICE_EVERY
from relay.store import events
from relay.store.conversations import Conversation, Member


async def farewell(connection: AsyncConnection, settings: Settings, group: Conversation, now: datetime, *,
                   reason: str | None, actor: str, coordinator: bool = True) -> None:
    """A farewell to every member of the group, and a note to the program's coordinator (`coordinator`
    False: the caller tells them itself, as `program end` does once for the whole program)."""
    program = settings.programs.get(group.program_id)
    if program is None:
        return
    domain = settings.relay.domain
    name = group.name or "your group"
    for member in group.members:
        mail = for_participant(settings, program, member, "group_farewell", program_name=program.name,
                               group_name=name, handle=member.handle, reason=reason, domain=domain)
        notice = notices.compose(domain=domain, program_name=program.name, to=member.email, now=now,
                                 subject=mail.subject, body=mail.text, language=mail.language,
                                 reply_to=notices.help_address(domain))
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
    if not coordinator:
        await events.record(connection, "farewell", now, pair_id=group.id, members=len(group.members),
                            coordinator=False)
        return
    staff = for_staff(settings, program, "group_closed_coordinator", program_name=program.name, group_name=name,
                      group_id=group.id, reason=reason, actor=actor, members=[m.handle for m in group.members])
    notice = notices.compose(domain=domain, program_name=program.name, to=program.coordinator, now=now,
                             subject=staff.subject, body=staff.text, language=staff.language)
    await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
    await events.record(connection, "farewell", now, pair_id=group.id, members=len(group.members),
                        coordinator=True)


async def after_end(connection: AsyncConnection, settings: Settings, group: Conversation, sender: Member,
                    message_id: str, now: datetime, *, automatic: bool) -> bool:
    """Tell the sender of mail to a closed group that it has ended (once a week at most)."""
    if automatic:
        return False
    week = int(now.timestamp() // CLOSED_NOTICE_EVERY.total_seconds())
    if not await keys.claim(connection, f"closed_notice:{group.id}:{sender.id}:{week}", kind="closed_notice",
                            pair_id=group.id, at=now):
        return False
    program = settings.programs[group.program_id]
    name = group.name or "your group"
    mail = for_participant(settings, program, sender, "group_closed_notice", program_name=program.name,
                           handle=sender.handle, domain=settings.relay.domain, group_name=name)
    notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=sender.email, now=now,
                             subject=mail.subject, body=mail.text, language=mail.language,
                             reply_to=notices.help_address(settings.relay.domain))
    await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=group.id,
                        message_id=message_id)
    await events.record(connection, "closed_notice", now, pair_id=group.id, message_id=message_id,
                        role=sender.role)
    return True
