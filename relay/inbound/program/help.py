"""help@ and concern@: a participant reaches the program's coordinator through the relay.

The coordinator gets the message with the sender's handle, role and pair (not their address) and a
Reply-To of help+m<member id>.<signature>@<domain>, signed like the bounce addresses (relay/bounces/),
so the answer goes back through the relay and the coordinator never needs the real address. Mail to
concern@ (or to help@ with a subject starting with "concern") is flagged urgent and pauses the
sender's pairs and groups: mail to a paused pair or group is accepted, archived and held for review, not
delivered (see `park`), until `pair resume` / `group resume`. Mail to either with a safeguarding sign in it
(the sender's policy's urgent findings: relay/inbound/program/mail.py), and every concern, goes to the
program's safeguarding lead as well, flagged urgent; a sign alone pauses nothing. Every step is an event.

The sender gets a confirmation, unless that could feed a mail loop (`no_confirmation`): never to an automatic
reply or to mail asking for no automatic answer, not to an answer to a confirmation under LOOP_WINDOW old, and at
most CONFIRMATIONS_PER_HOUR to one member's address. An automatic reply reaches here only with a safeguarding
sign; it pages the lead at most once per AUTOMATIC_PAGE_EVERY per member (the coordinator gets the others), while
a participant's own disclosure pages the lead every time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.headerregistry import Address

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.bounces import signature, signed
from relay.config import Settings
from relay.inbound.program.addresses import Incoming, groups_of, pairs_of
from relay.notices import render
from relay.notices.programs import folder, for_participant, for_staff, participant_language
from relay.nudges import keys
from relay.safeguarding.notices import lead_and_coordinator
from relay.store import events
from relay.store.conversations import Conversation, get_conversation
from relay.store.messages import Accepted, HoldEntry
from relay.store.pairs import Member, Pair
from relay.store.schema import members, notice_keys, pairs

CONFIRMATIONS_PER_HOUR = 3  # to one member's address; the rest of their help@ mail reaches staff unconfirmed
LOOP_WINDOW = timedelta(minutes=10)  # an answer to a confirmation this young is a probable loop: not confirmed
AUTOMATIC_PAGE_EVERY = timedelta(hours=1)  # an automatic reply with signs pages the lead once per member in this
MAX_REFS = 100  # of the ids a message answers, those looked up
CONFIRMATION = "help.confirmation"  # notice_keys: a confirmation's Message-ID
CONFIRMATIONS = "help.confirmations"  # notice_keys: the rate limit's slots
AUTOMATIC_PAGE = "help.automatic_page"  # notice_keys: an automatic reply paged the lead
_REPLY = re.compile(r"^help\+m(\d{1,12})\.([a-z2-7]{16})$")
PAUSED_REASON = {"rule": "pair_paused", "kind": "concern", "match": "the pair is paused after a concern",
                 "action": "hold", "start": -1, "end": -1}


def reply_address(member_id: int, secret: str, domain: str) -> str:
    return f"help+m{member_id}.{signature(f'help:{member_id}', secret)}@{domain}"


def is_reply_local_part(local_part: str) -> bool:
    return local_part.casefold().startswith("help+")


def member_of_reply(local_part: str, secret: str) -> int | None:
    """The member a coordinator's answer is for, or None when the address is malformed or forged."""
    match = _REPLY.match(local_part.casefold())
    if match is None or not secret:
        return None
    member_id = match.group(1)
    return int(member_id) if signed(f"help:{member_id}", match.group(2), secret) else None


async def handle(connection: AsyncConnection, incoming: Incoming) -> None:
    """Mail to help@ or concern@: to the coordinator, a confirmation back, and a pause for a concern."""
    concern = incoming.kind == "concern" or incoming.subject.strip().casefold().startswith("concern")
    urgent = concern or bool(incoming.urgent)
    settings, now = incoming.settings, incoming.now
    pair, member = incoming.enrolments[0]
    program = settings.programs[pair.program_id]
    domain = settings.relay.domain
    in_pairs, in_groups = pairs_of(incoming), groups_of(incoming)
    paused = []
    paused_groups = []
    if concern:
        for group, _ in in_groups:
            changed = await connection.execute(update(pairs).where(pairs.c.id == group.id, pairs.c.status == "active")
                                               .values(status="paused"))
            if changed.rowcount:
                paused_groups.append({"id": group.id, "name": group.name})
                await events.record(connection, "group.paused", now, pair_id=group.id,
                                    message_id=incoming.message_id, handle=member.handle)
        for each, role in in_pairs:
            changed = await connection.execute(update(pairs).where(pairs.c.id == each.id, pairs.c.status == "active")
                                               .values(status="paused"))
            if changed.rowcount:
                paused.append(each.id)
                await events.record(connection, "pair.paused", now, pair_id=each.id, message_id=incoming.message_id,
                                    by_role=role.role)
    values = {
        "program_name": program.name, "domain": domain, "handle": member.handle, "concern": urgent,
        "pairs": [{"id": p.id, "role": m.role, "partner_handle": p.partner_of(m).handle} for p, m in in_pairs],
        "groups": [{"id": g.id, "role": m.role, "name": g.name} for g, m in in_groups],
        "paused": paused, "paused_groups": paused_groups,
        "subject": incoming.subject or "(no subject)", "text": incoming.text,
    }
    # the subject names the first conversation: a pair by id, a group (for a member of groups only) by name
    where = {"pair_id": pair.id} if isinstance(pair, Pair) else {"pair_id": None, "group_name": pair.name}
    staff = for_staff(settings, program, "help_coordinator", member_role=member.role, **where, **values)
    lead = {"lead": "paged"} if urgent else {}
    if urgent and incoming.automatic and not await keys.claim_every(
            connection, f"{AUTOMATIC_PAGE}:m{member.id}", kind=AUTOMATIC_PAGE, pair_id=pair.id, at=now,
            every=AUTOMATIC_PAGE_EVERY):
        lead = {"lead": "not paged: an automatic reply from this member paged the lead within the hour"}
    paging = urgent and lead["lead"] == "paged"
    staff_addresses = lead_and_coordinator(settings, pair.program_id) if paging else [program.coordinator]
    to_staff = [notices.compose(
        domain=domain, program_name=program.name, to=address, now=now,
        subject=staff.subject, body=staff.text,
        reply_to=reply_address(member.id, incoming.secret, domain),
        headers={"Importance": "high", "X-Priority": "1"} if urgent else None, language=staff.language,
    ) for address in staff_addresses]
    for notice in to_staff:
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=pair.id,
                            message_id=incoming.message_id)
    not_confirmed = await no_confirmation(connection, incoming, member)
    if not_confirmed is None:
        mine = for_participant(settings, program, member, "help_confirmation", **values)
        confirmation = notices.compose(domain=domain, program_name=program.name, to=member.email, now=now,
                                       subject=mine.subject, body=mine.text, language=mine.language,
                                       reply_to=notices.help_address(domain))
        await notices.queue(connection, confirmation, domain=domain, now=now, pair_id=pair.id,
                            message_id=incoming.message_id)
        await keys.claim(connection, confirmation_key(confirmation.message_id), kind=CONFIRMATION, pair_id=pair.id,
                         at=now)
    signs = {"signs": incoming.urgent, "to": staff_addresses} if incoming.urgent else {"to": staff_addresses}
    marks = {k: v for k, v in (("automatic", incoming.automatic), ("not_read", incoming.read)) if v}
    for conversation, role in incoming.enrolments:
        await events.record(connection, "concern" if concern else "help", now, pair_id=conversation.id,
                            message_id=incoming.message_id, role=role.role, urgent=urgent, **signs, **lead, **marks,
                            confirmation=not_confirmed or "sent")


def confirmation_key(message_id: str) -> str:
    """The record of a confirmation's Message-ID (hashed: ids may be long), by which an answer to it is known."""
    digest = hashlib.sha256(message_id.strip().strip("<>").casefold().encode("utf-8")).hexdigest()[:40]
    return f"{CONFIRMATION}:{digest}"


async def no_confirmation(connection: AsyncConnection, incoming: Incoming, member: Member) -> str | None:
    """Why this message gets no confirmation, or None when it gets one. Never to an automatic reply (RFC 3834)
    nor to mail that asks for no automatic answer; not to a probable loop (an answer, within LOOP_WINDOW, to a
    confirmation: an auto-answering robot that sets no header answers each confirmation with a new message);
    and at most CONFIRMATIONS_PER_HOUR to one member's address (a robot that does not even thread its answers
    stops there). Staff get the message in every case."""
    if incoming.automatic:
        return f"not sent: an automatic reply ({incoming.automatic})"
    if incoming.no_auto_answer:
        return f"not sent: it asks for no automatic answer ({incoming.no_auto_answer})"
    answered = [confirmation_key(ref) for ref in dict.fromkeys(incoming.refs[:MAX_REFS])]
    if answered:
        recent = select(notice_keys.c.at).where(notice_keys.c.key.in_(answered),
                                                notice_keys.c.at >= incoming.now - LOOP_WINDOW).limit(1)
        if (await connection.execute(recent)).first() is not None:
            return "not sent: a probable loop (it answers a confirmation sent minutes ago)"
    slot = await keys.claim_slot(connection, f"{CONFIRMATIONS}:m{member.id}:{keys.address_digest(member.email)}",
                                 CONFIRMATIONS_PER_HOUR, kind=CONFIRMATIONS, pair_id=incoming.enrolments[0][0].id,
                                 at=incoming.now, every=timedelta(hours=1))
    return None if slot is not None else \
        f"not sent: {CONFIRMATIONS_PER_HOUR} confirmations to this address within the hour already"


async def answer(connection: AsyncConnection, settings: Settings, pair: Conversation, member: Member,
                 text: str, subject: str, now: datetime) -> None:
    """The coordinator's answer, passed on to the member from help@ (so their reply comes back there)."""
    program = settings.programs[pair.program_id]
    domain = settings.relay.domain
    notice = notices.compose(
        domain=domain, program_name=program.name, to=member.email, now=now, subject=subject or "(no subject)",
        body=text + "\n\n-- \n" + render(
            "help_answer_footer.txt.j2", participant_language(program, member), folder=folder(settings, program),
            program_name=program.name, domain=domain),
        sender=Address(display_name=f"{program.name} coordinator", username="help", domain=domain),
    )
    await notices.queue(connection, notice, domain=domain, now=now, pair_id=pair.id)
    await events.record(connection, "help.answered", now, actor="coordinator", pair_id=pair.id, role=member.role,
                        subject=subject)


def park(accepted: Accepted, program_id: str, policy: str) -> None:
    """Mail to a paused pair: archived and held for review, never delivered while the pause lasts."""
    accepted.reasons.append(PAUSED_REASON)
    earlier = accepted.hold.reasons if accepted.hold is not None else []
    requires = accepted.hold.release_requires if accepted.hold is not None else 1
    accepted.decision = "hold"
    accepted.outbound = None
    accepted.hold = (replace(accepted.hold, reasons=[PAUSED_REASON, *earlier]) if accepted.hold is not None else
                     HoldEntry(program_id=program_id, policy=policy, reasons=[PAUSED_REASON],
                               release_requires=requires, notified=False))


async def resume(connection: AsyncConnection, pair_id: int, now: datetime, actor: str) -> bool:
    changed = await connection.execute(update(pairs).where(pairs.c.id == pair_id, pairs.c.status == "paused")
                                       .values(status="active"))
    if changed.rowcount:
        await events.record(connection, "pair.resumed", now, actor=actor, pair_id=pair_id)
    return bool(changed.rowcount)



@dataclass(frozen=True)
class AnswerTarget:
    """RCPT named a signed reply address: the coordinator answers this member."""

    member_id: int


async def member_pair(connection: AsyncConnection, member_id: int) -> tuple[Conversation, Member] | None:
    """The member a coordinator's answer is for, with their pair or group (the one they wrote from)."""
    pair_id = (await connection.execute(select(members.c.pair_id).where(members.c.id == member_id))).scalar()
    conversation = await get_conversation(connection, pair_id) if pair_id is not None else None
    member = conversation.member_by_id(member_id) if conversation is not None else None
    if conversation is None or member is None:
        return None
    return conversation, member
