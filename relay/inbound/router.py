"""Intake's front door: RCPT routes the recipient's local part to a kind of inbound mail, DATA hands the
message to that kind's module. Nothing else is decided here.

  bounce+<entry>.<sig>@   delivery report     relay/inbound/delivery_reports.py
  away@ help@ concern@ share@  program address  relay/inbound/program/mail.py (handlers: program/*.py)
  notices@                as help@            a participant's reply to one of the relay's notices
  mentors@ mentees@       community mail      relay/inbound/community.py (fan-out through group.py)
  digest@                 digest choice       relay/inbound/digest_choice.py (each | daily | weekly)
  help+m<id>.<sig>@       coordinator answer  relay/inbound/coordinator_answers.py
  any other local part    partner mail        relay/inbound/partner.py (-> after_end.py, auto_replies.py)
    ... of a group        group mail          relay/inbound/group.py (group alias, or a member's private alias)

Shared by all: relay/inbound/context.py (store, clock, policies, refusing with a record, reading the
header), refusals.py, header.py, authentication.py, aliases.py. Every refusal is an SMTP reply with an
enhanced status code and plain text, and an event in the store (a stranger writing is a safety signal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from relay.bounces import is_bounce_local_part
from relay.clock import Clock
from relay.config import Settings
from relay.inbound import community, coordinator_answers, delivery_reports, digest_choice, group, partner
from relay.inbound.aliases import Target
from relay.inbound.community import CommunityTarget
from relay.inbound.context import Context
from relay.inbound.delivery_reports import BounceTarget
from relay.inbound.digest_choice import DigestTarget
from relay.inbound.group import GroupTarget
from relay.inbound.program import help as program_help
from relay.inbound.program import mail as program_mail
from relay.inbound.program.help import AnswerTarget
from relay.inbound.program.mail import ProgramTarget
from relay.inbound.refusals import Refusal
from relay.inbound.strangers import ReadGate
from relay.moderation.policy import PolicyBook
from relay.senderauth import Authenticator
from relay.store.committer import Committer
from relay.workers.pool import Pool

# Where an envelope may go: an alias, a signed bounce address, a program address, a coordinator's reply address.
AnyTarget = Target | GroupTarget | CommunityTarget | DigestTarget | BounceTarget | ProgramTarget | AnswerTarget


class Intake:
    def __init__(self, settings: Settings, engine: AsyncEngine, committer: Committer, clock: Clock,
                 authenticator: Authenticator | None = None, policies: PolicyBook | None = None,
                 pool: Pool | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        """`pool`: the worker processes (relay/workers); without one, the message work runs in-process.
        `monotonic`: the seconds the alias cache counts in."""
        policies = policies or PolicyBook(settings.policies_dir)
        self.context = Context(settings, engine, committer, clock,
                               authenticator or Authenticator(settings.relay.sender_auth), policies,
                               pool or Pool(settings, policies, None, workers=0), monotonic)

    @property
    def policies(self) -> PolicyBook:
        return self.context.policies

    @property
    def on_queued(self) -> Callable[[], None]:
        """The delivery worker's wake-up, called whenever intake queued something."""
        return self.context.on_queued

    @on_queued.setter
    def on_queued(self, wake: Callable[[], None]) -> None:
        self.context.on_queued = wake

    def forget_aliases(self) -> None:
        """Drop the remembered aliases (a sweep ended pairs, or a concern paused them)."""
        self.context.aliases.forget()

    async def check_recipient(self, address: str, mail_from: str | None, current: AnyTarget | None,
                              remote: str | None) -> AnyTarget:
        """The target `address` names, or Refusal when the envelope may not add it."""
        context = self.context
        detail: dict[str, Any] = {"rcpt": address, "mail_from": mail_from, "remote": remote}
        local, at, domain = address.rpartition("@")
        if not at or not local:
            raise await context.refuse(Refusal(553, "5.1.3", "Recipient address is not valid.", "bad_address"),
                                       **detail)
        if domain.casefold().rstrip(".") != context.domain:
            raise await context.refuse(Refusal(
                550, "5.7.1", f"Relaying denied: this server only accepts mail for {context.domain}.",
                "foreign_domain",
            ), **detail)
        if is_bounce_local_part(local):  # delivery reports come from the null sender: checked first
            return await delivery_reports.check(context, local, current, detail)
        if not mail_from or mail_from == "<>":  # aiosmtpd reports the null sender as "<>"
            raise await context.refuse(Refusal(
                550, "5.7.1", "A sender address is required to write to a mentoring alias.", "no_sender",
            ), **detail)
        if digest_choice.is_digest_address(local):
            return await digest_choice.check(context, mail_from, current, detail)
        if community.is_community_address(local):
            return await community.check(context, local, mail_from, current, detail)
        if program_mail.is_program_address(local):
            return await program_mail.check(context, local, mail_from, current, detail)
        if program_help.is_reply_local_part(local):
            return await coordinator_answers.check(context, local, mail_from, current, detail)
        return await partner.check(context, local, current, detail)

    async def accept(self, raw: bytes, mail_from: str, target: AnyTarget, remote: str | None,
                     helo: str | None = None, reads: ReadGate | None = None) -> str:
        """Take a message in; returns the queue id (or, for a delivery report, its entry), or raises Refusal.
        `reads`: whether a stranger's message to an alias may be read before its refusal (relay/smtp/handler.py
        keeps the budgets; None: always)."""
        if isinstance(target, ProgramTarget):
            return await program_mail.take(self.context, raw, mail_from, target, remote, helo)
        if isinstance(target, AnswerTarget):
            return await coordinator_answers.take(self.context, raw, mail_from, target, remote)
        if isinstance(target, BounceTarget):
            return await delivery_reports.take(self.context, raw, target, remote)
        if isinstance(target, DigestTarget):
            return await digest_choice.take(self.context, raw, mail_from, target, remote, helo)
        if isinstance(target, CommunityTarget):
            return await community.take(self.context, raw, mail_from, target, remote, helo)
        if isinstance(target, GroupTarget):
            return await group.take(self.context, raw, mail_from, target, remote, helo, reads=reads)
        return await partner.take(self.context, raw, mail_from, target, remote, helo, reads=reads)
