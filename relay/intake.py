"""Intake: decide, for RCPT and DATA, whether a message may enter, and take it in if so.

RCPT: only active aliases of our domain, one conversation per message, and a real sender.
DATA: parse, find the sender among the pair (only the enrolled partner may write), refuse loops,
moderate, anonymise, and hand archive row + decision + queue entry to the group committer. The reply
250 is given only after that commit (invariant 1). Every refusal is an SMTP reply with an enhanced
status code and plain text, and an event in the store (a stranger writing is a safety signal).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from relay import ids
from relay.anonymize.headers import header_text, message_ids
from relay.anonymize.message import parse
from relay.anonymize.parts import Unprocessable
from relay.anonymize.scrub import Identity
from relay.autoreply import NOTICE_EVERY as AUTO_REPLY_NOTICE_EVERY
from relay.autoreply import auto_reply_signal
from relay.bounces import entry_of, is_bounce_local_part
from relay.bounces.reports import classify, record_report
from relay.clock import Clock
from relay.config import Settings
from relay.moderation import Decision
from relay.moderation.inspection import PairStats
from relay.moderation.notify import moderator_notices, sender_notice
from relay.moderation.policy import Policy, PolicyBook
from relay.notices import as_entry, compose, render
from relay.nudges import help as program_help
from relay.nudges import lifecycle
from relay.nudges.addresses import Incoming, SpecialTarget, enrolments
from relay.nudges.handlers import HANDLERS, is_program_address
from relay.nudges.timing import is_away, zone_of
from relay.pipeline import Prepared, prepare
from relay.safeguarding import holding as safeguarding
from relay.senderauth import Authenticator, Verdict
from relay.senderauth import outcome as sender_auth
from relay.store import events
from relay.store.committer import Committer, Merged
from relay.store.events import event_values, happened_since, record
from relay.store.messages import (
    Accepted,
    AcceptOutcome,
    HoldEntry,
    OutboundEntry,
    pair_stats,
    store_accepted,
    store_accepted_many,
    thread_map,
)
from relay.store.outbound import entry_exists
from relay.store.pairs import Member, Pair, email_key, find_by_alias
from relay.store.state import read_state

log = logging.getLogger("relay.intake")

THREAD_THRESHOLD = 512 * 1024  # parse larger messages in a worker thread, off the event loop
ALIAS_TTL = 2.0  # seconds an active alias is remembered: closing a pair takes effect within this


class Refusal(Exception):
    """A refusal with its SMTP reply; `reason` is the event's short machine name."""

    def __init__(self, code: int, status: str, text: str, reason: str) -> None:
        super().__init__(text)
        self.code, self.status, self.text, self.reason = code, status, text, reason

    @property
    def reply(self) -> str:
        return f"{self.code} {self.status} {self.text}"


@dataclass(frozen=True)
class Target:
    """The alias an envelope is addressed to: the pair, the recipient, and who may write."""

    pair: Pair
    recipient: Member

    @property
    def sender(self) -> Member:
        return self.pair.partner_of(self.recipient)


@dataclass(frozen=True)
class BounceTarget:
    """A signed bounce address: the delivery report concerns this outbound queue entry."""

    entry_id: str


# Where an envelope may go: an alias, a signed bounce address, a program address, a coordinator's reply address.
AnyTarget = Target | BounceTarget | SpecialTarget | program_help.AnswerTarget


class Intake:
    def __init__(self, settings: Settings, engine: AsyncEngine, committer: Committer, clock: Clock,
                 authenticator: Authenticator | None = None) -> None:
        self.settings = settings
        self.authenticator = authenticator or Authenticator(settings.relay.sender_auth)
        self.domain = settings.relay.domain
        self.engine = engine
        self.committer = committer
        self.clock = clock
        self.policies = PolicyBook(settings.policies_dir)
        self._aliases: dict[str, tuple[float, tuple[Pair, Member]]] = {}
        self._verp_secret = ""
        self.on_queued: Callable[[], None] = lambda: None  # the delivery worker's wake-up

    def forget_aliases(self) -> None:
        """Drop the remembered aliases (a sweep ended pairs, or a concern paused them)."""
        self._aliases.clear()

    async def _refuse(self, refusal: Refusal, *, pair_id: int | None = None, **detail: Any) -> Refusal:
        """Record the refusal as an event (best effort) and hand it back to be raised."""
        values = event_values(
            "refused", self.clock.now(), pair_id=pair_id, reason=refusal.reason,
            reply=refusal.reply, **detail,
        )

        async def job(connection: Any) -> None:
            await events.write(connection, [values])

        try:
            await self.committer.run(job)
        except Exception:  # the refusal still stands; the record is best effort
            log.exception("could not record a refusal event")
        log.info("refused %s: %s", refusal.reason, detail)
        return refusal

    async def check_recipient(
        self, address: str, mail_from: str | None, current: AnyTarget | None,
        remote: str | None,
    ) -> AnyTarget:
        """Raise Refusal unless `address` is an active alias the envelope may add."""
        detail: dict[str, Any] = {"rcpt": address, "mail_from": mail_from, "remote": remote}
        local, at, domain = address.rpartition("@")
        if not at or not local:
            raise await self._refuse(Refusal(553, "5.1.3", "Recipient address is not valid.", "bad_address"), **detail)
        if domain.casefold().rstrip(".") != self.domain:
            raise await self._refuse(Refusal(
                550, "5.7.1", f"Relaying denied: this server only accepts mail for {self.domain}.", "foreign_domain",
            ), **detail)
        if is_bounce_local_part(local):  # delivery reports come from the null sender: checked first
            return await self._bounce_target(local, current, detail)
        if not mail_from or mail_from == "<>":  # aiosmtpd reports the null sender as "<>"
            raise await self._refuse(Refusal(
                550, "5.7.1", "A sender address is required to write to a mentoring alias.", "no_sender",
            ), **detail)
        if is_program_address(local):
            return await self._program_address(local, mail_from, current, detail)
        if program_help.is_reply_local_part(local):
            return await self._answer_target(local, mail_from, current, detail)
        found = await self._lookup(local)
        if found is None:
            raise await self._refuse(Refusal(550, "5.1.1", "No such mentoring alias here.", "unknown_alias"), **detail)
        pair, recipient = found
        # paused: accepted and held (relay/nudges/help.park); ended: accepted, the sender told (lifecycle)
        if pair.status not in ("active", "paused", "ended"):
            raise await self._refuse(Refusal(
                550, "5.1.6",
                "This mentoring conversation has ended and the address no longer accepts mail. "
                "Thank you for taking part; contact your program coordinator if you need help.",
                "closed_pair",
            ), pair_id=pair.id, **detail)
        if current is not None and (not isinstance(current, Target) or current.recipient.id != recipient.id):
            raise await self._refuse(Refusal(
                550, "5.5.3",
                "One message can go to one mentoring conversation only; please send it to each alias separately.",
                "two_pairs",
            ), pair_id=pair.id, **detail)
        return Target(pair=pair, recipient=recipient)

    async def _program_address(self, local: str, mail_from: str, current: AnyTarget | None,
                               detail: dict[str, Any]) -> SpecialTarget:
        """away@ and the program's other addresses: for enrolled participants only."""
        async with self.engine.connect() as connection:
            enrolled = await enrolments(connection, mail_from)
        if not enrolled:
            raise await self._refuse(_not_a_participant(), **detail)
        target = SpecialTarget(local.casefold(), email_key(mail_from))
        if current is not None and current != target:
            raise await self._refuse(Refusal(
                550, "5.5.3", "One message can go to one program address only; please send it separately.",
                "two_pairs"), **detail)
        return target

    async def _read_header(self, raw: bytes, detail: dict[str, Any], pair_id: int | None = None) -> Header:
        """Parse the message (in a worker thread when it is large); an unreadable header is a clear refusal."""
        try:
            return await asyncio.to_thread(_parse_header, raw) if len(raw) > THREAD_THRESHOLD else _parse_header(raw)
        except Exception:  # a parser edge case nobody has met yet: a clear, permanent refusal, and a log
            log.exception("reading the message header failed")
            raise await self._refuse(Refusal(
                554, "5.6.0", "The message header could not be read.", "unprocessable"), pair_id=pair_id, **detail,
            ) from None

    def policy_of(self, pair: Pair) -> Policy:
        """The policy in force for a pair: its own, else its program's."""
        program = self.settings.programs.get(pair.program_id)
        return self.policies.get(pair.policy or (program.policy if program else ""))

    async def _authenticate(self, raw: bytes, message: EmailMessage, header_from: str, mail_from: str,
                            remote: str | None, helo: str | None, policy: Policy, *, pair_id: int,
                            detail: dict[str, Any], can_hold: bool = True) -> Verdict | None:
        """The policy's sender authentication: None when off; raises the refusal it calls for
        (relay.senderauth.outcome: under `require`, a failure, or unverified mail that cannot be held)."""
        if policy.sender_auth == "off":
            return None
        verdict = await self.authenticator.check(raw, message, header_from=header_from, mail_from=mail_from,
                                                 remote=remote, helo=helo)
        if sender_auth.refused(verdict, policy.sender_auth, can_hold=can_hold):
            raise await self._refuse(_auth_refusal(verdict), pair_id=pair_id, header_from=header_from,
                                     auth=verdict.summary, **detail)
        return verdict

    async def _take_program_mail(self, raw: bytes, mail_from: str, target: SpecialTarget, remote: str | None,
                                 helo: str | None = None) -> str:
        """Archive a message to a program address and carry out what it asks, in one transaction."""
        now = self.clock.now()
        detail: dict[str, Any] = {"mail_from": mail_from, "remote": remote, "rcpt": f"{target.kind}@{self.domain}"}
        header = await self._read_header(raw, detail)
        message, header_from, own_id = header.message, header.sender, header.own_id
        if header_from is None or email_key(header_from) != target.sender_key:
            raise await self._refuse(_not_a_participant(), header_from=header_from, **detail)
        if header.looped(self.domain):
            raise await self._refuse(_loop_refusal(), **detail)
        async with self.engine.connect() as connection:
            enrolled = await enrolments(connection, mail_from)
        if not enrolled:
            raise await self._refuse(_not_a_participant(), **detail)
        pair, member = enrolled[0]
        # A forged concern@ would pause a pair, a forged away@ silence it: the sender is checked as for partner mail.
        verdict = await self._authenticate(raw, message, header_from, mail_from, remote, helo, self.policy_of(pair),
                                           pair_id=pair.id, detail=detail, can_hold=False)
        unverified = ({"sender_auth": verdict.kind, "auth": verdict.summary}
                      if verdict is not None and not verdict.passed else {})
        automatic = auto_reply_signal(message)
        subject = header_text(message, "Subject") or ""
        accepted = Accepted(
            id=ids.queue_id(), pair_id=pair.id, sender_id=member.id, sender_role=member.role,
            recipient_id=pair.partner_of(member).id, envelope_from=mail_from, remote_addr=remote,
            original_message_id=own_id or None, body_hash=body_hash(raw), subject=subject, raw=raw,
            decision="autoreply" if automatic else target.kind,
            reasons=[{"address": target.kind, **({"auto_reply": automatic} if automatic else {}), **unverified}],
            received_at=now, outbound=None, duplicate_window=self.settings.relay.smtp.duplicate_window,
            domain=self.domain,
        )
        if not self._verp_secret:
            self._verp_secret = await read_state(self.engine, "verp_secret")
        incoming = Incoming(self.settings, target.kind, now, accepted.id, subject, message, enrolled, self._verp_secret)

        async def job(connection: Any) -> AcceptOutcome:
            outcome = await store_accepted(connection, accepted)
            if not outcome.duplicate and not automatic:
                await HANDLERS[target.kind](connection, incoming)
            return outcome

        outcome = await self.committer.run(job)
        self.forget_aliases()  # a concern pauses pairs: no alias may be remembered as active
        self.on_queued()
        log.info("queue_id=%s to %s@ from the %s of pair %s", outcome.id, target.kind, member.role, pair.id)
        return outcome.id

    async def _answer_target(self, local: str, mail_from: str, current: Target | BounceTarget | SpecialTarget |
                             program_help.AnswerTarget | None, detail: dict[str, Any]) -> program_help.AnswerTarget:
        """A signed help+ address: only the coordinator of the member's program may answer through it."""
        if not self._verp_secret:
            self._verp_secret = await read_state(self.engine, "verp_secret")
        member_id = program_help.member_of_reply(local, self._verp_secret)
        found = None
        if member_id is not None:
            async with self.engine.connect() as connection:
                found = await program_help.member_pair(connection, member_id)
        if found is None:
            raise await self._refuse(Refusal(550, "5.1.1", "No such address here.", "forged_reply"), **detail)
        pair, member = found
        program = self.settings.programs.get(pair.program_id)
        if program is None or pair.status == "closed" or email_key(mail_from) != email_key(program.coordinator):
            raise await self._refuse(Refusal(
                550, "5.7.1", "This address accepts mail only from the program's coordinator.", "stranger",
            ), pair_id=pair.id, **detail)
        target = program_help.AnswerTarget(member.id)
        if current is not None and current != target:
            raise await self._refuse(Refusal(
                550, "5.5.3", "One answer per address, please.", "two_pairs"), pair_id=pair.id, **detail)
        return target

    async def _take_answer(self, raw: bytes, mail_from: str, target: program_help.AnswerTarget,
                           remote: str | None) -> str:
        """The coordinator's answer to a participant's help mail: passed on from help@."""
        now = self.clock.now()
        detail: dict[str, Any] = {"mail_from": mail_from, "remote": remote}
        async with self.engine.connect() as connection:
            found = await program_help.member_pair(connection, target.member_id)
        if found is None:
            raise await self._refuse(Refusal(550, "5.1.1", "No such address here.", "forged_reply"), **detail)
        pair, member = found
        program = self.settings.programs[pair.program_id]
        header = await self._read_header(raw, detail)
        message, header_from = header.message, header.sender
        if header_from is None or email_key(header_from) != email_key(program.coordinator):
            raise await self._refuse(Refusal(
                550, "5.7.1", "This address accepts mail only from the program's coordinator.", "stranger",
            ), pair_id=pair.id, header_from=header_from, **detail)
        if header.looped(self.domain):
            raise await self._refuse(_loop_refusal(), pair_id=pair.id, **detail)
        subject = header_text(message, "Subject") or ""
        if auto_reply_signal(message):
            await self.committer.run(lambda c: record(c, "help.auto_reply", now, pair_id=pair.id, subject=subject))
            return f"answer-{target.member_id}"
        await self.committer.run(lambda c: program_help.answer(c, self.settings, pair, member, message, subject, now))
        self.on_queued()
        log.info("coordinator answered the %s of pair %s through the relay", member.role, pair.id)
        return f"answer-{target.member_id}"


    async def _lookup(self, local: str) -> tuple[Pair, Member] | None:
        """An alias's pair and recipient. Active aliases are remembered for ALIAS_TTL seconds (every
        RCPT asks); unknown or closed ones are always looked up, so a new pair works at once."""
        key = local.casefold()
        now = time.monotonic()
        cached = self._aliases.get(key)
        if cached is not None and now - cached[0] < ALIAS_TTL:
            return cached[1]
        async with self.engine.connect() as connection:
            found = await find_by_alias(connection, key)
        if found is not None and found[0].status == "active":
            if len(self._aliases) > 10_000:
                self._aliases.clear()
            self._aliases[key] = (now, found)
        return found

    async def _bounce_target(self, local: str, current: AnyTarget | None,
                             detail: dict[str, Any]) -> BounceTarget:
        if not self._verp_secret:
            self._verp_secret = await read_state(self.engine, "verp_secret")
        entry_id = entry_of(local, self._verp_secret)
        if entry_id is not None:
            async with self.engine.connect() as connection:
                if not await entry_exists(connection, entry_id):
                    entry_id = None
        if entry_id is None:
            raise await self._refuse(Refusal(550, "5.7.1", "No such bounce address here.", "forged_bounce"), **detail)
        if current is not None and current != BounceTarget(entry_id):
            raise await self._refuse(Refusal(
                550, "5.5.3", "One report per bounce address, please.", "two_pairs"), **detail)
        return BounceTarget(entry_id)

    async def accept(self, raw: bytes, mail_from: str, target: AnyTarget, remote: str | None,
                     helo: str | None = None) -> str:
        """Take a message in; returns the queue id (or, for a delivery report, its entry), or raises Refusal."""
        if isinstance(target, SpecialTarget):
            return await self._take_program_mail(raw, mail_from, target, remote, helo)
        if isinstance(target, program_help.AnswerTarget):
            return await self._take_answer(raw, mail_from, target, remote)
        now = self.clock.now()
        if isinstance(target, BounceTarget):
            result = classify(raw)
            notified = await self.committer.run(lambda c: record_report(
                c, self.settings, entry_id=target.entry_id, result=result, now=now, remote=remote))
            if notified:
                self.on_queued()
            log.info("outbound=%s delivery report from %s: %s", target.entry_id, remote, result)
            return f"report-{target.entry_id}"
        sender, recipient, pair = target.sender, target.recipient, target.pair
        detail: dict[str, Any] = {
            "mail_from": mail_from, "remote": remote, "rcpt": recipient.alias_address(self.domain)}
        header = await self._read_header(raw, detail, pair.id)
        message, header_from, own_id = header.message, header.sender, header.own_id
        if header_from is None:
            raise await self._refuse(Refusal(
                550, "5.7.1", "The message has no recognisable sender (From:) address.", "no_sender",
            ), pair_id=pair.id, **detail)
        if header.looped(self.domain):
            raise await self._refuse(_loop_refusal(), pair_id=pair.id, **detail)
        if email_key(header_from) != sender.email_key:
            raise await self._refuse(Refusal(
                550, "5.7.1",
                "This mentoring alias accepts mail only from the person it was set up for.", "stranger",
            ), pair_id=pair.id, header_from=header_from, **detail)
        policy = self.policy_of(pair)
        verdict = await self._authenticate(raw, message, header_from, mail_from, remote, helo, policy,
                                           pair_id=pair.id, detail=detail)
        signal = auto_reply_signal(message)
        if pair.status == "ended":
            return await self._take_after_end(raw, mail_from, remote, target, own_id or None, now,
                                              header_text(message, "Subject"), automatic=signal is not None)
        if signal is not None:
            return await self._take_auto_reply(raw, mail_from, remote, target, own_id or None, signal, now,
                                               header_text(message, "Subject"))

        refs = message_ids(message, "In-Reply-To") + message_ids(message, "References")
        async with self.engine.connect() as connection:
            mapping = await thread_map(connection, pair.id, sender.role, refs)
            cap = _stats_cap(policy)
            total, last_day = await pair_stats(connection, pair.id, now, cap) if cap else (0, 0)
        new_id = ids.message_id(self.domain)
        subject = header_text(message, "Subject")  # the original's, for the archive (the copy gets scrubbed)
        try:
            prepared = await self._prepare(message, len(raw), sender, recipient, mapping, new_id, now, policy,
                                           PairStats(total, last_day))
        except Unprocessable as exc:
            raise await self._refuse(Refusal(
                554, "5.6.0", f"The message could not be processed: {exc}.", "unprocessable",
            ), pair_id=pair.id, **detail) from None
        decision = sender_auth.apply(prepared.decision, verdict, policy.sender_auth)
        queue_id = ids.queue_id()
        accepted = Accepted(
            id=queue_id,
            pair_id=pair.id,
            sender_id=sender.id,
            sender_role=sender.role,
            recipient_id=recipient.id,
            envelope_from=mail_from,
            remote_addr=remote,
            original_message_id=own_id or None,
            body_hash=body_hash(raw),
            subject=subject,
            raw=raw,
            decision=decision.action,
            reasons=[{"policy": decision.policy, "flagged": decision.flagged}, *decision.reason_dicts()],
            received_at=now,
            outbound=(OutboundEntry(rcpt=recipient.email, out_message_id=new_id, raw=prepared.raw)
                      if decision.action in ("deliver", "redact") else None),
            duplicate_window=self.settings.relay.smtp.duplicate_window,
            domain=self.domain,
        )
        if decision.action in ("hold", "reject"):
            self._add_notices(accepted, decision, policy, pair, sender, recipient, own_id or None)
        if pair.status == "paused" and decision.action != "reject":
            program_help.park(accepted, pair.program_id, policy.name)
        outcome: AcceptOutcome = await self.committer.run(Merged(store_accepted_many, accepted))
        if outcome.duplicate:
            log.info("queue_id=%s duplicate resend from %s recognised; not queued again", outcome.id, remote)
        else:
            self.on_queued()
            log.info("queue_id=%s accepted pair=%s from=%s decision=%s%s size=%d", outcome.id, pair.id,
                     sender.role, decision.action, " flagged" if decision.flagged else "", len(raw))
        return outcome.id

    async def _take_after_end(self, raw: bytes, mail_from: str, remote: str | None, target: Target,
                              own_id: str | None, now: Any, subject: str | None, *, automatic: bool) -> str:
        """Mail to an ended pair: archived, not delivered; the sender gets a polite note (weekly at most)."""
        pair, sender, recipient = target.pair, target.sender, target.recipient
        accepted = Accepted(
            id=ids.queue_id(), pair_id=pair.id, sender_id=sender.id, sender_role=sender.role,
            recipient_id=recipient.id, envelope_from=mail_from, remote_addr=remote, original_message_id=own_id,
            body_hash=body_hash(raw), subject=subject, raw=raw, decision="ended",
            reasons=[{"rule": "pair_ended"}], received_at=now, outbound=None,
            duplicate_window=self.settings.relay.smtp.duplicate_window, domain=self.domain,
        )

        async def job(connection: Any) -> AcceptOutcome:
            outcome = await store_accepted(connection, accepted)
            if not outcome.duplicate:
                await lifecycle.after_end(connection, self.settings, pair, sender, accepted.id, now,
                                          automatic=automatic)
            return outcome

        outcome: AcceptOutcome = await self.committer.run(job)
        self.on_queued()
        log.info("queue_id=%s to the ended pair %s: archived, not delivered", outcome.id, pair.id)
        return outcome.id

    async def _take_auto_reply(self, raw: bytes, mail_from: str, remote: str | None, target: Target,
                               own_id: str | None, signal: str, now: Any, subject: str | None) -> str:
        """Archive an automatic reply without forwarding it; tell the partner, at most once per period."""
        pair, sender, recipient = target.pair, target.sender, target.recipient
        async with self.engine.connect() as connection:
            told = await happened_since(connection, "away_notice", pair.id, now - AUTO_REPLY_NOTICE_EVERY)
        program = self.settings.programs.get(pair.program_id)
        if program is not None and is_away(sender, now, zone_of(sender, program)):
            told = True  # the partner already knows from away mode (relay/nudges/away.py)
        queue_id = ids.queue_id()
        notices: list[OutboundEntry] = []
        extra: list[dict[str, Any]] = []
        if not told:
            program = self.settings.programs.get(pair.program_id)
            program_name = program.name if program else pair.program_id
            notice = compose(domain=self.domain, program_name=program_name, to=recipient.email,
                             subject=f"{sender.handle} is away for now", now=now,
                             body=render("partner_away.txt.j2", away_handle=sender.handle, program_name=program_name))
            notices.append(as_entry(notice))
            extra.append(event_values("away_notice", now, pair_id=pair.id, message_id=queue_id,
                                      away_role=sender.role, told_role=recipient.role))
        accepted = Accepted(
            id=queue_id, pair_id=pair.id, sender_id=sender.id, sender_role=sender.role, recipient_id=recipient.id,
            envelope_from=mail_from, remote_addr=remote, original_message_id=own_id, body_hash=body_hash(raw),
            subject=subject, raw=raw, decision="autoreply", reasons=[{"rule": "auto_reply", "match": signal}],
            received_at=now, outbound=None, duplicate_window=self.settings.relay.smtp.duplicate_window,
            domain=self.domain, notices=notices, extra_events=extra,
        )
        outcome: AcceptOutcome = await self.committer.run(Merged(store_accepted_many, accepted))
        if not outcome.duplicate and notices:
            self.on_queued()
        log.info("queue_id=%s automatic reply from the %s archived, not forwarded (%s)%s", outcome.id, sender.role,
                 signal.split(":")[0], "; partner told" if notices else "")
        return outcome.id

    def _add_notices(self, accepted: Accepted, decision: Decision, policy: Policy, pair: Pair, sender: Member,
                     recipient: Member, own_id: str | None) -> None:
        now = accepted.received_at
        if decision.urgent:  # a safeguarding sign: lead, moderators and the sender's help text, in this commit
            safeguarding.hold_urgent(accepted, self.settings, decision, policy, pair, sender, recipient, own_id)
            return
        kind = "held" if decision.action == "hold" else "rejected"
        notice = sender_notice(self.settings, kind=kind, policy=policy, program_id=pair.program_id, to=sender.email,
                               subject=accepted.subject, in_reply_to=own_id, now=now)
        if notice is not None:
            accepted.notices.append(as_entry(notice))
        if decision.action != "hold":  # rejected by the policy: in the queue's history, moderators told
            safeguarding.record_rejection(accepted, self.settings, decision, policy, pair, sender, recipient)
            return
        immediately = policy.digest_every is None and bool(policy.moderators.notify)
        if immediately:
            item = {"id": accepted.id, "pair_id": pair.id, "sender_handle": sender.handle,
                    "recipient_handle": recipient.handle, "subject": accepted.subject or "(no subject)",
                    "held_at": now.strftime("%Y-%m-%d %H:%M"), "reasons": decision.reason_dicts()}
            for mail in moderator_notices(self.settings, template="moderator_held.txt.j2", policy=policy,
                                          program_id=pair.program_id, items=[item], now=now):
                accepted.notices.append(as_entry(mail))
        accepted.hold = HoldEntry(program_id=pair.program_id, policy=policy.name, reasons=decision.reason_dicts(),
                                  release_requires=decision.release_requires, notified=immediately)

    async def _prepare(
        self, message: EmailMessage, size: int, sender: Member, recipient: Member, mapping: dict[str, str],
        new_id: str, now: Any, policy: Policy, stats: PairStats,
    ) -> Prepared:
        def run() -> Prepared:
            try:
                return prepare(message, sender=self.identity(sender), recipient=self.identity(recipient),
                               thread_map=mapping, new_message_id=new_id, now=now, domain=self.domain,
                               policy=policy, context=self.inspection_context(sender, recipient, stats))
            except Unprocessable:
                raise
            except RecursionError:
                raise Unprocessable("MIME structure nested too deeply") from None
            except Exception:  # a parser edge case we have not met: refuse clearly, never crash
                log.exception("anonymisation failed")
                raise Unprocessable("its MIME structure could not be read") from None

        return await asyncio.to_thread(run) if size > THREAD_THRESHOLD else run()

    def inspection_context(self, sender: Member, recipient: Member, stats: PairStats) -> dict[str, Any]:
        program = self.settings.programs.get(sender.program_id)
        return {
            "sender_role": sender.role, "sender_email": sender.email, "sender_name": sender.name,
            "recipient_email": recipient.email, "recipient_name": recipient.name,
            "region": program.region if program else "US", "domain": self.domain,
            "aliases": (sender.alias_address(self.domain), recipient.alias_address(self.domain)), "stats": stats,
        }

    def identity(self, member: Member) -> Identity:
        return Identity(
            email=member.email, name=member.name,
            alias_address=member.alias_address(self.domain), handle=member.handle,
        )


@dataclass(frozen=True)
class Header:
    """What intake reads from a message's header before anything else."""

    message: EmailMessage
    sender: str | None  # the first From: address
    own_id: str  # the Message-ID as written
    loop_marker: str  # X-Loop, case-folded

    def looped(self, domain: str) -> bool:
        """Our own message came back: it carries our Message-ID or our X-Loop."""
        return self.own_id.casefold().endswith(f"@{domain}>") or domain in self.loop_marker.split()


def _parse_header(raw: bytes) -> Header:
    message = parse(raw)
    return Header(message, _first_address(message), (header_text(message, "Message-ID") or "").strip(),
                  (header_text(message, "X-Loop") or "").casefold())


def _loop_refusal() -> Refusal:
    return Refusal(550, "5.4.6", "Mail loop detected: this message has already passed through the relay.", "loop")


def _not_a_participant() -> Refusal:
    return Refusal(550, "5.7.1", "Only participants of a mentoring program can write to this address.", "stranger")


def _auth_refusal(verdict: Verdict) -> Refusal:
    if verdict.result == "fail":
        return Refusal(550, "5.7.1", "This message could not be verified as coming from the address enrolled in "
                       "the program (DKIM, SPF and DMARC did not pass); it was not delivered.", "spoofing")
    if verdict.temporary:
        return Refusal(451, "4.7.0", "The sender could not be verified just now (DNS did not answer); "
                       "please try again later.", "auth_temperror")
    return Refusal(550, "5.7.1", "This program accepts mail to this address only when the sender's domain "
                   "signs it (DKIM) or lists its servers (SPF); this message carried neither.", "unverified")


def _stats_cap(policy: Policy) -> int:
    """How far the pair's messages must be counted for this policy's rules (0: not at all)."""
    thresholds = [getattr(s.params, "count", 0) if s.rule == "first_messages" else getattr(s.params, "max_per_day", 0)
                  for s in policy.rules if s.rule in ("rate", "first_messages")]
    return max(thresholds, default=-1) + 1


def _first_address(message: EmailMessage) -> str | None:
    value = header_text(message, "From")
    if not value:
        return None
    for _, address in getaddresses([value]):
        if "@" in address:
            return address.strip()
    return None


def body_hash(raw: bytes) -> str:
    """Hash of the body only: a resend through another hop may gain Received lines, not a new body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index >= 0:
            return hashlib.sha256(raw[index + len(separator):]).hexdigest()
    return hashlib.sha256(raw).hexdigest()
