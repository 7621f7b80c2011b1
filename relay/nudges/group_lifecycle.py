"""The end of a group: `group close` sends every member a farewell and tells the coordinator (in the
transaction that closes it); a group whose end date passed is ended by the nudge sweep, which sends the
same farewells (relay/nudges/rules/groups.py): both claim the same once-only keys, so a member gets one
farewell however the group ends. Mail to a closed or ended group from a member is archived, not
delivered, and the sender gets a polite note at most once a week, as for an ended pair
(relay/nudges/lifecycle.py). When a mentor leaves a group (their record erased: relay/archive/person.py),
the members who stay are told, and the coordinator too when the group has no mentor left (`mentor_left`).
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
from relay.nudges.rules.groups import farewells, present_members
from relay.store import events
from relay.store.conversations import Conversation, Member


async def farewell(connection: AsyncConnection, settings: Settings, group: Conversation, now: datetime, *,
                   reason: str | None, actor: str, coordinator: bool = True) -> None:
    """A farewell to every member of the group who has not had one (the group ended by its end date
    first: relay/nudges/rules/groups.farewell), and a note to the program's coordinator (`coordinator`
    False: the caller tells them itself, as `program end` does once for the whole program)."""
    program = settings.programs.get(group.program_id)
    if program is None:
        return
    domain = settings.relay.domain
    name = group.name or "your group"
    told = []
    for item in farewells(settings, program, group, now, reason=reason):
        if not await keys.claim(connection, item.key, kind=item.kind, pair_id=group.id, at=now):
            continue  # sent when the group's end date passed
        mail = item.rendered
        notice = notices.compose(domain=domain, program_name=program.name, to=item.rcpt, now=now,
                                 subject=mail.subject, body=mail.text, language=mail.language,
                                 reply_to=notices.help_address(domain))
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
        told.append(item.to_handle or "")
    if not coordinator:
        await events.record(connection, "farewell", now, pair_id=group.id, members=len(told), coordinator=False)
        return
    staff = for_staff(settings, program, "group_closed_coordinator", program_name=program.name, group_name=name,
                      group_id=group.id, reason=reason, actor=actor, members=told)
    notice = notices.compose(domain=domain, program_name=program.name, to=program.coordinator, now=now,
                             subject=staff.subject, body=staff.text, language=staff.language)
    await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
    await events.record(connection, "farewell", now, pair_id=group.id, members=len(told), coordinator=True)


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


async def mentor_left(connection: AsyncConnection, settings: Settings, group: Conversation, leaving: Member,
                      now: datetime) -> None:
    """`leaving`, a mentor, leaves the open group (their record is being erased): every member who stays is
    told, by the leaving mentor's handle only, whether the group still has a mentor; when it has none, the
    coordinator is told too, so that they add one or close the group."""
    program = settings.programs.get(group.program_id)
    if program is None or leaving.role != "mentor":
        return
    domain = settings.relay.domain
    name = group.name or "your group"
    staying = [m for m in present_members(group) if m.id != leaving.id]
    mentors = ", ".join(m.handle for m in staying if m.role == "mentor")
    for member in staying:
        mail = for_participant(settings, program, member, "group_mentor_left", program_name=program.name,
                               group_name=name, handle=member.handle, left_handle=leaving.handle, mentors=mentors,
                               domain=domain)
        notice = notices.compose(domain=domain, program_name=program.name, to=member.email, now=now,
                                 subject=mail.subject, body=mail.text, language=mail.language,
                                 reply_to=notices.help_address(domain))
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
    if not mentors:
        staff = for_staff(settings, program, "group_no_mentor_coordinator", program_name=program.name,
                          group_name=name, group_id=group.id, left_handle=leaving.handle,
                          mentees=[m.handle for m in staying])
        notice = notices.compose(domain=domain, program_name=program.name, to=program.coordinator, now=now,
                                 subject=staff.subject, body=staff.text, language=staff.language)
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
    await events.record(connection, "mentor_left", now, pair_id=group.id, handle=leaving.handle,
                        told=[m.handle for m in staying], mentors_left=len([m for m in staying if m.role == "mentor"]),
                        coordinator=not mentors)
