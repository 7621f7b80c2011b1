"""Mail to a program address (away@, help@, concern@, share@; notices@, where a participant answers one of
the relay's notices, is help@) at intake.

RCPT: the envelope sender must be an enrolled participant (a member of a pair or a group that is not
closed; for share@, the contact exchange after the end, and for help@ and concern@, which a former
participant may still need, of any pair). DATA: the From: must be the same
person, the mail no loop, and the sender authenticated as the policy of their pair (or, for a member of
groups only, their group) asks (a forged concern@ would pause a pair, a forged away@ silence it). The
message is archived with the address as its decision, in the transaction that carries out what it asks
(relay/inbound/program/handlers.py); an automatic reply is archived and not acted on. Mail to help@ and
concern@ is first read for safeguarding signs by the sender's policy, the way partner mail is read
(relay/moderation/inspection.py: every text part, the text of HTML...; in a worker process: the message may be
long), so that a disclosure there reaches the safeguarding lead as well as the coordinator; an automatic reply
with a sign in it is acted on too (never confirmed: relay/inbound/program/help.py), and mail that cannot be read
whole is read for its subject and text instead of refused (`signs`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from relay import ids
from relay.anonymize.parts import Unprocessable
from relay.archive import chain
from relay.inbound import authentication, refusals
from relay.inbound.context import Context
from relay.inbound.program import ADDRESSES
from relay.inbound.program.addresses import Incoming, enrolments
from relay.inbound.program.handlers import HANDLERS
from relay.store.messages import Accepted, AcceptOutcome, enrolments_basis, store_accepted
from relay.store.pairs import Pair, email_key
from relay.workers import tasks
from relay.workers.pool import BudgetExceeded, WorkerLost

log = logging.getLogger("relay.intake")
TO_STAFF = ("help", "concern")  # read for safeguarding signs
# open to the members of closed conversations of these kinds too: share@ (contact details after a pair's end)
# and the staff addresses, which a child may need after any ending (a reply to a group's farewell is help@ mail)
OPEN_AFTER_CLOSE = {"share": ("pair",), **{kind: ("pair", "group") for kind in TO_STAFF}}
# The From of the relay's own notices (relay/notices): a participant who answers one there (a client that
# ignores its Reply-To: help@, a notice sent before it had one) is writing to the program: help@ mail.
REPLIES = {"notices": "help"}
UNREAD = "unread"  # the sign of mail to help@ or concern@ whose text could not be read at all: it goes to the lead


@dataclass(frozen=True)
class ProgramTarget:
    """RCPT named one of the program's addresses: `kind` is its local part."""

    kind: str
    sender_key: str


def is_program_address(local_part: str) -> bool:
    return local_part.casefold() in ADDRESSES or local_part.casefold() in REPLIES


async def check(context: Context, local: str, mail_from: str, current: object | None,
                detail: dict[str, Any]) -> ProgramTarget:
    """away@ and the program's other addresses (notices@ as help@): for enrolled participants only."""
    kind = REPLIES.get(local.casefold(), local.casefold())
    async with context.engine.connect() as connection:
        enrolled = await enrolments(connection, mail_from, closed=OPEN_AFTER_CLOSE.get(kind, ()))
    if not enrolled:
        raise await context.refuse(refusals.not_a_participant(), **detail)
    target = ProgramTarget(kind, email_key(mail_from))
    if current is not None and current != target:
        raise await context.refuse(refusals.one_target_only(
            "One message can go to one program address only; please send it separately."), **detail)
    return target


async def take(context: Context, raw: bytes, mail_from: str, target: ProgramTarget, remote: str | None,
               helo: str | None = None) -> str:
    """Archive a message to a program address and carry out what it asks, in one transaction."""
    now = context.clock.now()
    detail: dict[str, Any] = {"mail_from": mail_from, "remote": remote, "rcpt": f"{target.kind}@{context.domain}"}
    header = await context.header(raw, detail, whole=True)
    header_from, own_id = header.sender, header.own_id
    if header_from is None or email_key(header_from) != target.sender_key:
        raise await context.refuse(refusals.not_a_participant(), header_from=header_from, **detail)
    if header.looped(context.domain):
        raise await context.refuse(refusals.loop(), **detail)
    async with context.engine.connect() as connection:
        enrolled = await enrolments(connection, mail_from, closed=OPEN_AFTER_CLOSE.get(target.kind, ()))
    if not enrolled:
        raise await context.refuse(refusals.not_a_participant(), **detail)
    if target.kind in TO_STAFF:  # about what is open now, if anything is: its program's staff are told
        enrolled.sort(key=lambda enrolment: enrolment[0].status == "closed")
    pair, member = enrolled[0]
    policy = context.policy_of(pair)
    # A program address cannot hold mail for review: what `require` would hold is refused here.
    verdict = await authentication.authenticate(context, raw, header.trace, header_from, mail_from, remote, helo,
                                                policy, pair_id=pair.id, detail=detail, can_hold=False)
    automatic = header.auto_reply
    subject = header.subject or ""
    urgent: list[str] = []
    unread: str | None = None
    if target.kind in TO_STAFF:  # an automatic reply too: a header is no reason to leave a disclosure unread
        urgent, unread = await signs(context, raw, policy.name, subject, header.text, detail)
    acted_on = not automatic or bool(urgent)  # an automatic reply with signs still reaches staff (never answered)
    accepted = Accepted(
        id=ids.queue_id(), pair_id=pair.id, sender_id=member.id, sender_role=member.role,
        recipient_id=pair.partner_of(member).id if isinstance(pair, Pair) else None, envelope_from=mail_from,
        remote_addr=remote,
        original_message_id=own_id or None, body_hash=header.body_hash, subject=subject, raw=raw,
        decision=target.kind if acted_on else "autoreply",
        reasons=[{"address": target.kind, **({"auto_reply": automatic} if automatic else {}),
                  **({"not_read": unread} if unread else {}), **authentication.unverified_reason(verdict)}],
        received_at=now, outbound=None, duplicate_window=context.settings.relay.smtp.duplicate_window,
        domain=context.domain, basis=enrolments_basis(enrolled),
    )
    incoming = Incoming(context.settings, target.kind, now, accepted.id, subject, header.text, enrolled,
                        await context.verp_secret(), urgent, automatic=automatic,
                        no_auto_answer=header.no_auto_answer, refs=header.refs, read=unread)

    async def job(connection: Any) -> AcceptOutcome:
        outcome = await store_accepted(connection, accepted)
        if outcome.written and acted_on:  # (its confirmation goes to the member's address as read)
            await HANDLERS[target.kind](connection, incoming)
        return outcome

    async with chain.prehashed(raw):  # the archive chain's hash of a large message: in a thread
        outcome = await context.committer.run(job)
    await context.unchanged(outcome, pair.id, remote, detail["rcpt"])
    context.aliases.forget()  # a concern pauses pairs: no alias may be remembered as active
    context.on_queued()
    log.info("queue_id=%s to %s@ from the %s of %s %s", outcome.id, target.kind, member.role, pair.kind, pair.id)
    return outcome.id


async def signs(context: Context, raw: bytes, policy: str, subject: str, text: str,
                detail: dict[str, Any]) -> tuple[list[str], str | None]:
    """The safeguarding signs in mail to help@ or concern@, and why the whole message could not be read (None
    when it was). A message that cannot be read whole (a MIME structure the parser gives up on, over its CPU
    budget, a worker lost) is not refused: a child writing for help must reach a person. Its subject and the
    text intake already read (relay/inbound/header.readable_text) are read for signs instead; if even that
    fails, the mail counts as urgent (UNREAD), so that the lead reads what the relay could not."""
    try:
        return await context.pool.run(tasks.urgent_kinds, raw, policy), None
    except (Unprocessable, BudgetExceeded, WorkerLost) as exc:
        why = str(exc) or type(exc).__name__
    log.warning("mail to %s could not be read whole for safeguarding signs (%s); its text is read instead",
                detail.get("rcpt"), why)
    try:
        return await context.pool.run(tasks.urgent_kinds_of_text, subject, text, policy), why
    except (Unprocessable, BudgetExceeded, WorkerLost) as exc:
        log.warning("the text of mail to %s could not be read either (%s): it goes to the lead", detail.get("rcpt"),
                    exc)
        return [UNREAD], f"{why}; its text not either: {exc}"
