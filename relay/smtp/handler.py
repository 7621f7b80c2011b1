"""The aiosmtpd handler: translate RCPT and DATA into Intake calls and Intake answers into replies.

Nothing here decides anything; unexpected errors become a temporary failure (451), never a traceback,
so a client keeps the message and retries.

A session whose RCPTs were refused `max_refused_recipients` times (smtp config) gets
`421 4.7.0` to its next RCPT and is closed (relay/smtp/server.py closes it after the reply); that
last attempt is recorded too.

A message refused at DATA because a stranger wrote it (relay/inbound/strangers.py) does not count towards that
cap: a front-end MTA (deploy/postfix) carries every sender's mail to the relay over reused connections, and a
flood of spam to an alias must not cost the next sender on that connection, a member, their session. What a
stranger's message costs the relay is its read for safeguarding signs, and that is bounded instead: at most
`stranger_reads_per_session` reads per session and `stranger_reads_per_ip_per_minute` per client address
(relay/smtp/limits.ReadBudget; addresses in per_ip_limits_exempt are held to the session's budget only). Past
either budget the 550 stands and the message is not read; its record says so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.anonymize.writable import has_surrogates
from relay.inbound.refusals import Refusal, too_many_refused_recipients
from relay.inbound.router import AnyTarget, Intake
from relay.inbound.strangers import ReadGate
from relay.smtp.limits import ReadBudget
from relay.store.database import log_store_failure

log = logging.getLogger("relay.smtp")

TEMPORARY = "451 4.3.0 Temporary problem at the relay; please try again later."
# The store's write lock stayed taken longer than a writer waits (relay/store/database.WRITER_WAIT): by a long
# admin command, say. Nothing is wrong with the message or the relay; the sender's server retries.
BUSY = "451 4.3.0 The relay is busy just now; please try again later."


class InFlight:
    """Counts DATA handlers at work, so shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> InFlight:
        self.count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.count -= 1


class RelayHandler:
    def __init__(self, intake: Intake, max_refused_recipients: int = 20, stranger_reads_per_session: int = 10,
                 read_budget: ReadBudget | None = None) -> None:
        self.intake = intake
        self.max_refused_recipients = max_refused_recipients
        self.stranger_reads_per_session = stranger_reads_per_session
        self.read_budget = read_budget or ReadBudget(0)
        self.in_flight = InFlight()
        self.accepting = True

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if not self.accepting:  # shutting down: transactions under way finish, new ones are turned away
            return "421 4.3.2 The relay is shutting down; please try again later."
        if has_surrogates(address):  # bytes that are not UTF-8, as aiosmtpd reads them
            return "553 5.1.7 The sender address is not valid UTF-8."
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        current: AnyTarget | None = getattr(envelope, "relay_target", None)
        refused: int = getattr(session, "refused_recipients", 0)
        if refused >= self.max_refused_recipients:
            session.closing = True  # type: ignore[attr-defined]
            refusal = await self.intake.context.refuse(
                too_many_refused_recipients(refused), rcpt=address, mail_from=envelope.mail_from,
                remote=_peer(session))
            return refusal.reply
        if has_surrogates(address):  # permanent: a sender retrying the same bytes for days gains nothing
            session.refused_recipients = refused + 1  # type: ignore[attr-defined]
            return "553 5.1.3 The recipient address is not valid UTF-8."
        try:
            target = await self.intake.check_recipient(address, envelope.mail_from, current, _peer(session))
        except Refusal as refusal:
            session.refused_recipients = refused + 1  # type: ignore[attr-defined]
            return refusal.reply
        except Exception as exc:
            return _failed(exc, f"RCPT {address}")
        if current is None:
            envelope.relay_target = target  # type: ignore[attr-defined]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        target: AnyTarget | None = getattr(envelope, "relay_target", None)
        if target is None or envelope.mail_from is None:
            return "503 5.5.1 No valid recipients."
        raw = envelope.original_content or b""
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        with self.in_flight:
            # Shield the intake: if the client disconnects, aiosmtpd cancels this handler, but the
            # message being taken in must be finished (committed or refused), never left half-done.
            task = asyncio.ensure_future(self.intake.accept(raw, envelope.mail_from, target, _peer(session),
                                                           helo=session.host_name, reads=self._reads(session)))
            try:
                queue_id = await asyncio.shield(task)
            except Refusal as refusal:  # a stranger's refusal is not counted: its read is (`_reads`)
                return refusal.reply
            except asyncio.CancelledError:
                await asyncio.wait([task], timeout=60)
                raise
            except Exception as exc:
                return _failed(exc, f"DATA from {_peer(session)}")
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def _reads(self, session: Session) -> ReadGate:
        """Whether a stranger's message in this session may be read for safeguarding signs: None (and the read
        counted) while the session's and its client's budgets last, else why not."""

        def gate() -> str | None:
            used: int = getattr(session, "stranger_reads", 0)
            if used >= self.stranger_reads_per_session:
                return f"this session's {used} reads of strangers' messages are used up"
            if not self.read_budget.take(_peer(session)):
                return "this client address's reads of strangers' messages in the last minute are used up"
            session.stranger_reads = used + 1  # type: ignore[attr-defined]
            return None

        return gate


def _failed(exc: Exception, what: str) -> str:
    """The reply to a command that failed unexpectedly, logged: a store that stayed busy is one warning line
    (nothing is broken, and the sender's server retries), anything else the error with its traceback."""
    return BUSY if log_store_failure(log, exc, "%s failed", what) else TEMPORARY


def _peer(session: Session) -> str | None:
    peer: Any = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer) if peer else None
