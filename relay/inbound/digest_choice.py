"""Mail to digest@<domain>: a member of groups or communities chooses how they receive them — the subject
`each` (every message as it comes), `daily` or `weekly` (one digest: relay/digests/). The choice applies
to every group and community the person is in (and to communities they join later: relay/communities.py
copies it), is confirmed by a notice, and recorded (`digest.chosen`); an unclear subject, or a sender in
no group or community, gets a notice that says how to write it. Like the program addresses: only enrolled
participants may write (550 otherwise), the From: must be the envelope sender, the message is archived
(decision `digest`) in the transaction that carries it out, and an automatic reply is archived only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import ids, notices
from relay.archive import chain
from relay.communities import ENROLLED, SIDE_OF, communities_for, enrolled_anywhere
from relay.digests import MODES
from relay.inbound import authentication, refusals
from relay.inbound.context import Context
from relay.notices.programs import for_participant
from relay.store import events
from relay.store.conversations import email_key, get_conversation
from relay.store.messages import Accepted, AcceptOutcome, basis, store_accepted
from relay.store.schema import members, pairs

log = logging.getLogger("relay.intake")

LOCAL_PART = "digest"
_WORD = re.compile(r"^\s*(?:(?:re|fwd?|aw|sv|rv|tr|ответ|رد)\s*:\s*)*([^\W\d_]+)(?!\w)", re.IGNORECASE)
# The words in the shipped languages (the notices show the English ones, which work for everyone).
_SYNONYMS = {
    "cada": "each", "chaque": "each", "каждое": "each", "каждый": "each", "كل": "each",
    "diario": "daily", "diaria": "daily", "quotidien": "daily", "quotidienne": "daily", "ежедневно": "daily",
    "يومي": "daily", "يوميا": "daily",
    "semanal": "weekly", "hebdomadaire": "weekly", "еженедельно": "weekly", "أسبوعي": "weekly", "اسبوعي": "weekly",
    "أسبوعيا": "weekly",
}


@dataclass(frozen=True)
class DigestTarget:
    sender_key: str


def is_digest_address(local_part: str) -> bool:
    return local_part.casefold() == LOCAL_PART


def parse_subject(subject: str) -> str | None:
    """each | daily | weekly (`none`, the program file's word, is taken as each), or None when unclear."""
    match = _WORD.match(subject)
    word = match.group(1).casefold() if match else ""
    word = _SYNONYMS.get(word, word)
    word = "each" if word == "none" else word
    return word if word in MODES else None


async def check(context: Context, mail_from: str, current: object | None, detail: dict[str, Any]) -> DigestTarget:
    async with context.engine.connect() as connection:
        enrolled = await enrolled_anywhere(connection, mail_from)
    if not enrolled:
        raise await context.refuse(refusals.not_a_participant(), **detail)
    target = DigestTarget(email_key(mail_from))
    if current is not None and current != target:
        raise await context.refuse(refusals.one_target_only(
            "One message can go to one program address only; please send it separately."), **detail)
    return target


async def take(context: Context, raw: bytes, mail_from: str, target: DigestTarget, remote: str | None,
               helo: str | None = None) -> str:
    now = context.clock.now()
    detail: dict[str, Any] = {"mail_from": mail_from, "remote": remote, "rcpt": f"{LOCAL_PART}@{context.domain}"}
    header = await context.header(raw, detail)
    header_from, own_id = header.sender, header.own_id
    if header_from is None or email_key(header_from) != target.sender_key:
        raise await context.refuse(refusals.not_a_participant(), header_from=header_from, **detail)
    if header.looped(context.domain):
        raise await context.refuse(refusals.loop(), **detail)
    async def join(connection: AsyncConnection) -> None:  # the communities they belong to, if not yet synced
        for side in SIDE_OF.values():
            await communities_for(connection, context.settings, mail_from, side, now)

    await context.committer.run(join)
    async with context.engine.connect() as connection:
        rows = (await connection.execute(
            select(members.c.id, members.c.pair_id, pairs.c.kind)
            .select_from(members.join(pairs, pairs.c.id == members.c.pair_id))
            .where(members.c.email_key == target.sender_key, pairs.c.status.in_(ENROLLED),
                   members.c.left_at.is_(None)).order_by(members.c.id.desc()))).all()
        if not rows:
            raise await context.refuse(refusals.not_a_participant(), **detail)
        home = await get_conversation(connection, rows[0].pair_id)
        names = sorted({name for name in (await connection.execute(select(pairs.c.name).where(
            pairs.c.id.in_([r.pair_id for r in rows if r.kind != "pair"])))).scalars() if name})
    assert home is not None
    member = home.member_by_id(rows[0].id)
    assert member is not None
    verdict = await authentication.authenticate(context, raw, header.trace, header_from, mail_from, remote, helo,
                                                context.policy_of(home), pair_id=home.id, detail=detail)
    automatic = header.auto_reply
    subject = header.subject or ""
    accepted = Accepted(
        id=ids.queue_id(), pair_id=home.id, sender_id=member.id, sender_role=member.role, recipient_id=None,
        envelope_from=mail_from, remote_addr=remote, original_message_id=own_id or None, body_hash=header.body_hash,
        subject=subject, raw=raw, decision="autoreply" if automatic else LOCAL_PART,
        reasons=[{"address": LOCAL_PART, **({"auto_reply": automatic} if automatic else {}),
                  **authentication.unverified_reason(verdict)}],
        received_at=now, outbound=None, duplicate_window=context.settings.relay.smtp.duplicate_window,
        domain=context.domain, basis=basis(home.status, member),
    )
    grouped = [r.id for r in rows if r.kind != "pair"]
    program = context.settings.programs[home.program_id]
    mode = parse_subject(subject)
    domain = context.domain
    values: dict[str, Any] = {"handle": member.handle, "domain": domain, "program_name": program.name,
                               "subject": subject, "mode": mode or "", "conversations": ", ".join(names),
                               "no_group": mode is not None and not grouped}

    async def job(connection: AsyncConnection) -> AcceptOutcome:
        outcome = await store_accepted(connection, accepted)
        if not outcome.written or automatic:  # (its answer goes to the member's address as read)
            return outcome
        if mode is None or not grouped:
            mail, kind = for_participant(context.settings, program, member, "digest_unclear", **values), \
                "digest.unclear"
        else:
            await connection.execute(update(members).where(members.c.id.in_(grouped)).values(digest=mode))
            mail, kind = for_participant(context.settings, program, member, "digest_confirmation", **values), \
                "digest.chosen"
        notice = notices.compose(domain=domain, program_name=program.name, to=member.email, subject=mail.subject,
                                 body=mail.text, now=now, in_reply_to=own_id or None, language=mail.language,
                                 reply_to=notices.help_address(domain))
        await notices.queue(connection, notice, domain=domain, now=now, pair_id=home.id, message_id=accepted.id)
        await events.record(connection, kind, now, pair_id=home.id, message_id=accepted.id, mode=mode,
                            members=grouped, subject=subject)
        return outcome

    async with chain.prehashed(raw):  # the archive chain's hash of a large message: in a thread
        outcome: AcceptOutcome = await context.committer.run(job)
    await context.unchanged(outcome, home.id, remote, detail["rcpt"])
    context.on_queued()
    log.info("queue_id=%s to digest@ mode=%s members=%s", outcome.id, mode, grouped)
    return outcome.id

