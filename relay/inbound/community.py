"""Mail to a program community: mentors@<domain> (the sender's fellow mentors) or mentees@<domain> (fellow
mentees), in every program where the sender is enrolled with that role and the program enables that
community (relay/communities.py keeps each community's members in step with enrolment).

RCPT: the envelope sender must be enrolled with the address's role in a program whose community of that
side is enabled; a stranger, a mentee writing to mentors@ (or a mentor to mentees@) and a participant of
programs without that community get 550 with a text that says which. DATA: the message goes down the
group code path (relay/inbound/group.take) once per community — the From: must be a member, the program's
policy moderates it once, it is archived once in that community, every member's identity is scrubbed
from every copy, and each member gets at most one copy even if they share several programs with the sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relay.communities import Side, communities_for, enrolled_anywhere, side_of
from relay.inbound import group, refusals
from relay.inbound.context import Context
from relay.inbound.group import GroupTarget
from relay.inbound.refusals import Refusal
from relay.store.conversations import Conversation, email_key


@dataclass(frozen=True)
class CommunityTarget:
    side: Side
    sender_key: str
    communities: tuple[Conversation, ...]


def is_community_address(local_part: str) -> bool:
    return side_of(local_part) is not None


async def check(context: Context, local: str, mail_from: str, current: object | None,
                detail: dict[str, Any]) -> CommunityTarget:
    side = side_of(local)
    assert side is not None
    now = context.clock.now()

    async def job(connection: AsyncConnection) -> list[Conversation]:  # writes go through the one writer
        return await communities_for(connection, context.settings, mail_from, side, now)

    found = await context.committer.run(job)
    if not found:
        async with context.engine.connect() as connection:
            participant = await enrolled_anywhere(connection, mail_from)
        if not participant:
            raise await context.refuse(refusals.not_a_participant(), **detail)
        raise await context.refuse(Refusal(
            550, "5.7.1", f"{side.local}@{context.domain} reaches the community of a program's {side.local}: "
            f"you are not enrolled as a {side.role} in a program whose {side.local}' community is open. "
            "Write to your own conversation's address instead.", "no_community"), **detail)
    target = CommunityTarget(side, email_key(mail_from), tuple(found))
    if current is not None and current != target:
        raise await context.refuse(refusals.one_target_only(
            "One message can go to one mentoring conversation only; please send it to each address separately.",
        ), **detail)
    return target


async def take(context: Context, raw: bytes, mail_from: str, target: CommunityTarget, remote: str | None,
               helo: str | None = None) -> str:
    """One group message per community; a person reached through one is skipped in the next."""
    first: str | None = None
    reached: set[str] = {target.sender_key}
    for community in target.communities:
        queue_id = await group.take(context, raw, mail_from, GroupTarget(community, None), remote, helo,
                                    skip=frozenset(reached))
        first = first or queue_id
        reached.update(m.email_key for m in community.members if m.left_at is None)
    assert first is not None
    return first
