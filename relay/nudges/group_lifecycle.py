"""The end of a group: `group close` sends every member a farewell and tells the coordinator (in the
transaction that closes it); mail to a closed or ended group from a member is archived, not delivered,
and the sender gets a polite note at most once a week, as for an ended pair (relay/nudges/lifecycle.py).
Notices name handles and the group's name only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.nudges import keys
from relay.nudges.compose import render
from relay.nudges.lifecycle import CLOSED_NOTICE_EVERY
from relay.store import events
from relay.store.conversations import Conversation, Member


async def farewell(connection: AsyncConnection, settings: Settings, group: Conversation, now: datetime, *,
                   reason: str | None, actor: str) -> None:
    """A farewell to every member of the group, and a note to the program's coordinator."""
    program = settings.programs.get(group.program_id)
    if program is None:
        return
    domain = settings.relay.domain
    name = group.name or "your group"
    for member in group.members:
        values: dict[str, Any] = {"program_name": program.name, "group_name": name, "handle": member.handle,
                                  "reason": reason,
                  "domain": domain}
        notice = notices.compose(domain=domain, program_name=program.name, to=member.email, now=now,
                                 subject=f"{name} has come to its end",
                                 body=render(settings, program, "group_farewell.txt.j2", values))
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=group.id)
    told: dict[str, Any] = {"program_name": program.name, "group_name": name, "group_id": group.id, "reason": reason,
              "actor": actor, "members": [f"{m.handle} ({m.role})" for m in group.members]}
    notice = notices.compose(domain=domain, program_name=program.name, to=program.coordinator, now=now,
                             subject=f"Group {name} (id {group.id}) closed",
                             body=render(settings, program, "group_closed_coordinator.txt.j2", told))
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
    values = {"program_name": program.name, "handle": sender.handle, "domain": settings.relay.domain,
              "group_name": name}
    notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=sender.email, now=now,
                             subject=f"{name} has ended",
                             body=render(settings, program, "group_closed_notice.txt.j2", values))
    await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=group.id,
                        message_id=message_id)
    await events.record(connection, "closed_notice", now, pair_id=group.id, message_id=message_id,
                        role=sender.role)
    return True
