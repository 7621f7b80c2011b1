"""What a program address's handler is given (Incoming), who may write to the program's addresses
(enrolments), and how a request that cannot be carried out is answered (explain).

Only enrolled participants may write to them: the envelope sender must be the address of a member of
a pair or a group that is not closed (checked at RCPT), and the From: header the same (checked at DATA, in
relay/inbound/program/mail.py). The message is archived like any other, with the address as its decision, in the
transaction that carries out what it asks (relay/inbound/program/away.py ...). A request that cannot be
carried out is answered with a notice saying why, never a bounce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.notices.programs import for_participant
from relay.store import events
from relay.store.conversations import Conversation, get_conversation, writes_as
from relay.store.pairs import Member, Pair
from relay.store.schema import members, pairs


@dataclass
class Incoming:
    """A message to a program address, archived under `message_id`."""

    settings: Settings
    kind: str
    now: datetime
    message_id: str
    subject: str
    text: str  # the body's text as a reader sees it (relay/inbound/header.readable_text)
    enrolments: list[tuple[Conversation, Member]]  # the pairs, then the groups, the sender is in (not closed;
    # share@: closed pairs too; help@, concern@: closed pairs and groups too)
    secret: str  # signs the coordinator's reply addresses (relay/inbound/program/help.py)
    urgent: list[str] = field(default_factory=list)  # help@, concern@: the safeguarding signs found in it
    automatic: str | None = None  # help@, concern@: what marks it as an automatic reply (then it has signs)
    no_auto_answer: str | None = None  # help@, concern@: what asks for no automatic answer
    refs: tuple[str, ...] = ()  # the ids it answers (In-Reply-To, References)
    read: str | None = None  # help@, concern@: why the whole message could not be read (its text was)


async def enrolments(connection: AsyncConnection, address: str, *,
                     closed: tuple[str, ...] = ()) -> list[tuple[Conversation, Member]]:
    """The pairs, then the groups (not closed; those of the kinds in `closed` even when closed: pairs for share@
    after `pair close`, pairs and groups for help@ and concern@, which a child may need after any ending),
    where `address` is a member, with that member. Ongoing ones come first within each kind, so that a person
    enrolled again after an earlier pair ended (a re-match) is taken for the member of their current pair. A
    member of groups only is a participant as much as a member of a pair. (Communities are not counted:
    their members are the programs' pair members, found through their pairs.)"""
    query = (select(members.c.id, members.c.pair_id, pairs.c.kind)
             .select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
             .where(writes_as(address), pairs.c.kind.in_(["pair", "group"]))
             .order_by(pairs.c.kind != "pair", members.c.pair_id))
    query = query.where(or_(pairs.c.status != "closed", pairs.c.kind.in_(closed)) if closed
                        else pairs.c.status != "closed")
    found = []
    for row in (await connection.execute(query)).all():
        conversation = await get_conversation(connection, row.pair_id)
        member = conversation.member_by_id(row.id) if conversation is not None else None
        if conversation is not None and member is not None:
            found.append((conversation, member))
    return sorted(found, key=lambda item: (not isinstance(item[0], Pair),
                                           item[0].status not in ("active", "paused")))


def pairs_of(incoming: Incoming) -> list[tuple[Pair, Member]]:
    """The sender's pairs among their enrolments."""
    return [(pair, member) for pair, member in incoming.enrolments if isinstance(pair, Pair)]


def groups_of(incoming: Incoming) -> list[tuple[Conversation, Member]]:
    """The sender's groups among their enrolments."""
    return [(group, member) for group, member in incoming.enrolments if not isinstance(group, Pair)]


async def explain(connection: AsyncConnection, incoming: Incoming, name: str, **values: str) -> None:
    """Answer the sender with the notice `name` (what went wrong, how to do it), recorded as <kind>.unclear."""
    pair, member = incoming.enrolments[0]
    program = incoming.settings.programs[pair.program_id]
    mail = for_participant(incoming.settings, program, member, name, program_name=program.name,
                           handle=member.handle, domain=incoming.settings.relay.domain, **values)
    notice = notices.compose(domain=incoming.settings.relay.domain, program_name=program.name, to=member.email,
                             subject=mail.subject, body=mail.text, now=incoming.now, language=mail.language,
                             reply_to=notices.help_address(incoming.settings.relay.domain))
    await notices.queue(connection, notice, domain=incoming.settings.relay.domain, now=incoming.now,
                        pair_id=pair.id, message_id=incoming.message_id)
    await events.record(connection, f"{incoming.kind}.unclear", incoming.now, pair_id=pair.id,
                        message_id=incoming.message_id, **values)
