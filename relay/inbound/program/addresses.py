"""What a program address's handler is given (Incoming), who may write to the program's addresses
(enrolments), and how a request that cannot be carried out is answered (explain).

Only enrolled participants may write to them: the envelope sender must be the address of a member of
a pair that is not closed (checked at RCPT), and the From: header the same (checked at DATA, in
relay/inbound/program/mail.py). The message is archived like any other, with the address as its decision, in the
transaction that carries out what it asks (relay/inbound/program/away.py ...). A request that cannot be
carried out is answered with a notice saying why, never a bounce.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.notices.programs import for_participant
from relay.store import events
from relay.store.conversations import Conversation, get_conversation, writes_as
from relay.store.pairs import Member, Pair, get_pair
from relay.store.schema import members, pairs


@dataclass
class Incoming:
    """A message to a program address, archived under `message_id`."""

    settings: Settings
    kind: str
    now: datetime
    message_id: str
    subject: str
    text: str  # the plain-text body (relay/inbound/header.plain_text)
    enrolments: list[tuple[Pair, Member]]  # every pair the sender is a member of (not closed; share@: all)
    secret: str  # signs the coordinator's reply addresses (relay/inbound/program/help.py)


async def enrolments(connection: AsyncConnection, address: str, *, closed: bool = False) -> list[tuple[Pair, Member]]:
    """The pairs (not closed; `closed`: those too, for share@ after `pair close`) where `address` is a
    member, with that member: ongoing pairs first, so that a person enrolled again after an earlier pair
    ended (a re-match) is taken for the member of their current pair."""
    query = (select(members.c.pair_id, members.c.role)
             .select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
             .where(writes_as(address), pairs.c.kind == "pair")
             .order_by(members.c.pair_id))
    if not closed:
        query = query.where(pairs.c.status != "closed")
    found = []
    for row in (await connection.execute(query)).all():
        pair = await get_pair(connection, row.pair_id)
        if pair is not None:
            found.append((pair, pair.member(row.role)))
    return sorted(found, key=lambda item: item[0].status not in ("active", "paused"))


async def group_enrolments(connection: AsyncConnection, address: str) -> list[tuple[Conversation, Member]]:
    """The groups (not closed) where `address` is a member, with that member."""
    query = (select(members.c.pair_id)
             .select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
             .where(writes_as(address), pairs.c.status != "closed", pairs.c.kind == "group")
             .order_by(members.c.pair_id))
    found = []
    for row in (await connection.execute(query)).all():
        group = await get_conversation(connection, row.pair_id)
        member = group.member_by_email(address) if group is not None else None
        if group is not None and member is not None:
            found.append((group, member))
    return found


async def explain(connection: AsyncConnection, incoming: Incoming, name: str, **values: str) -> None:
    """Answer the sender with the notice `name` (what went wrong, how to do it), recorded as <kind>.unclear."""
    pair, member = incoming.enrolments[0]
    program = incoming.settings.programs[pair.program_id]
    mail = for_participant(incoming.settings, program, member, name, program_name=program.name,
                           handle=member.handle, domain=incoming.settings.relay.domain, **values)
    notice = notices.compose(domain=incoming.settings.relay.domain, program_name=program.name, to=member.email,
                             subject=mail.subject, body=mail.text, now=incoming.now)
    await notices.queue(connection, notice, domain=incoming.settings.relay.domain, now=incoming.now,
                        pair_id=pair.id, message_id=incoming.message_id)
    await events.record(connection, f"{incoming.kind}.unclear", incoming.now, pair_id=pair.id,
                        message_id=incoming.message_id, **values)
