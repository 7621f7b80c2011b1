"""The mutual-consent contact exchange at the end of a pair, where the program allows it
(`contact_exchange: true`). Each member answers by mail to share@<domain> with the subject "yes" or
"no" and the partner's handle ("yes Maple"), from the time the ending notice goes out, or, for a pair closed
by hand, once its farewell offered it (relay/endings.py). Never for a pair on which a concern was raised
(relay/contact_exchange.py: the one decision for every path). Only when both said yes does each get the
other's real name and address, once. A "no" (or no answer) means nothing is passed on; a program that does
not allow it answers with a notice saying so.

Consent is given to one partner. A member with one pair whose exchange is open may answer a bare "yes"; one
with several (a mentor of two mentees ending the same day) must name the partner, in the subject or else the
text (a whole word, any case; only the sender's own partners are looked for): a "yes" naming none of them, or
more than one, records nothing and the sender is asked to write again naming whom (listing the handles). A
"no" naming nobody is a "no" to each (nothing is passed on). A subject naming a partner whose exchange is not
open is asked about too, never taken for another pair's.

Each member's "share_done" notice carries the other's real name and address: it is queued as about the
other's own "yes" (its message_id), so that erasing the other (relay/archive/person.py empties the mail
about a person's own messages) empties it too, as erasing its recipient does.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.contact_exchange import allowed, concerned
from relay.inbound.program.addresses import Incoming, explain, pairs_of
from relay.notices.programs import for_participant
from relay.nudges import keys
from relay.nudges.lifecycle import end_of
from relay.store import events
from relay.store.conversations import handle_key
from relay.store.pairs import Member, Pair, get_pair
from relay.store.schema import events as events_table
from relay.store.schema import members

_ANSWER = re.compile(r"^\s*(?:(?:re|aw|rv|tr|ответ|رد)\s*:\s*)*(yes|sí|si|oui|да|نعم|no|non|нет|لا)(?!\w)",
                     re.IGNORECASE)
MAX_READ = 100_000  # characters of the subject or text read for a partner's handle
_YES = frozenset({"yes", "sí", "si", "oui", "да", "نعم"})  # the shipped languages' yes; anything else matched: no


def parse_answer(subject: str) -> str | None:
    """"yes" or "no" from a subject in any shipped language ("Sí", "oui", "нет", "نعم"); None when unclear."""
    match = _ANSWER.match(subject)
    if match is None:
        return None
    return "yes" if match.group(1).lower() in _YES else "no"


async def _yes_messages(connection: AsyncConnection, pair_id: int) -> dict[str, str]:
    """The message by which each member of the pair last answered (role -> message id), from the consent
    events: the "share_done" notice naming a member is about that member's "yes"."""
    rows = (await connection.execute(select(events_table.c.message_id, events_table.c.detail).where(
        events_table.c.kind == "contact_exchange.consent", events_table.c.pair_id == pair_id)
        .order_by(events_table.c.id))).all()
    found: dict[str, str] = {}
    for row in rows:
        role = json.loads(row.detail).get("role")
        if isinstance(role, str) and row.message_id is not None:
            found[role] = row.message_id
    return found


def _partners_named(text: str, choices: list[tuple[Pair, Member]]) -> list[tuple[Pair, Member]]:
    """The pairs among `choices` whose partner's handle `text` names (a whole word or words, any case)."""
    folded = handle_key(text[:MAX_READ])
    return [(pair, member) for pair, member in choices
            if re.search(rf"(?<!\w){re.escape(handle_key(pair.partner_of(member).handle))}(?!\w)", folded)]


def _meant(incoming: Incoming, own: list[tuple[Pair, Member]], several: bool) -> list[tuple[Pair, Member]]:
    """The sender's pairs whose partner the answer names: in the subject, else (when `several` pairs may be
    meant) in the text; none when neither names one."""
    return _partners_named(incoming.subject, own) or (_partners_named(incoming.text, own) if several else [])


async def handle(connection: AsyncConnection, incoming: Incoming) -> None:
    settings, now = incoming.settings, incoming.now
    answer = parse_answer(incoming.subject)
    if answer is None:
        await explain(connection, incoming, "share_unclear", problem="answer")
        return
    own = pairs_of(incoming)  # contact exchange is between the two of a pair only
    offered = await keys.claimed(connection, [keys.exchange_offered(pair.id) for pair, _ in own])
    concerns = await concerned(connection, [pair.id for pair, _ in own])
    eligible = []
    candidates = []  # the pairs whose program allows the exchange
    withheld = []  # ... but not for this pair (a concern was raised on it)
    for pair, member in own:
        program = settings.programs.get(pair.program_id)
        if program is None or not program.contact_exchange:
            continue
        candidates.append(pair)
        if not allowed(program, pair, concern=pair.id in concerns):
            withheld.append(pair)
            continue
        end = end_of(pair, program)
        if pair.status == "closed":  # closed by hand: only if its farewell offered it
            if keys.exchange_offered(pair.id) in offered:
                eligible.append((pair, member))
        elif end is not None and now >= end - program.responsiveness.ending_notice_before:
            eligible.append((pair, member))
    if not eligible:
        rest = [p for p in candidates if p not in withheld]
        closed = all(p.status == "closed" for p in rest or candidates)  # closed without the offer
        # said the same way whatever the reason it is withheld: the partner must not learn of a concern
        problem = ("not_allowed" if not candidates else "not_offered" if closed
                   else "withheld" if not rest else "not_ended")
        await explain(connection, incoming, "share_unclear", problem=problem)
        return
    # consent is given to one partner: with several pairs ending, the answer names whom it is for
    named = _meant(incoming, own, several=len(eligible) > 1)
    if named or len(eligible) > 1:
        chosen = [item for item in eligible if item in named]
        if (answer == "yes" and len(chosen) != 1) or (answer == "no" and named and not chosen):
            handles = [pair.partner_of(member).handle for pair, member in eligible]
            await explain(connection, incoming, "share_unclear", problem="which", handles=", ".join(handles),
                          example=handles[0])
            return
        eligible = chosen or eligible  # an unnamed "no": for every pair (nothing is passed on)
    for pair, member in eligible:
        await connection.execute(update(members).where(members.c.id == member.id).values(contact_consent=answer))
        await events.record(connection, "contact_exchange.consent", now, pair_id=pair.id,
                            message_id=incoming.message_id, role=member.role, answer=answer)
        fresh = await get_pair(connection, pair.id)
        assert fresh is not None
        program = settings.programs[pair.program_id]
        both = all(fresh.member(role).contact_consent == "yes" for role in ("mentor", "mentee"))
        if both and await keys.claim(connection, f"contact_exchange.done:{pair.id}", kind="contact_exchange.done",
                                     pair_id=pair.id, at=now):
            said_yes = await _yes_messages(connection, pair.id)
            for person in (fresh.mentor, fresh.mentee):
                other = fresh.partner_of(person)
                mail = for_participant(settings, program, person, "share_done", program_name=program.name,
                                       handle=person.handle, partner_handle=other.handle, partner_name=other.name,
                                       partner_email=other.email)
                notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=person.email,
                                         now=now, subject=mail.subject, body=mail.text, language=mail.language,
                                         reply_to=notices.help_address(settings.relay.domain))
                await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id,
                                    message_id=said_yes.get(other.role, incoming.message_id))
            await events.record(connection, "contact_exchange.done", now, pair_id=pair.id,
                                message_id=incoming.message_id)
            continue
        mail = for_participant(settings, program, member, "share_confirmation", program_name=program.name,
                               handle=member.handle, answer=answer, partner_handle=pair.partner_of(member).handle)
        notice = notices.compose(domain=settings.relay.domain, program_name=program.name, to=member.email, now=now,
                                 subject=mail.subject, body=mail.text, language=mail.language,
                                 reply_to=notices.help_address(settings.relay.domain))
        await notices.queue(connection, notice, domain=settings.relay.domain, now=now, pair_id=pair.id,
                            message_id=incoming.message_id)
