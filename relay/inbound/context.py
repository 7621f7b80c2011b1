"""What every kind of inbound mail shares: settings, store, clock, the group committer, sender
authentication, the policies, the aliases, the relay's signing secret, and the delivery worker's
wake-up; plus the two steps every kind begins with: refusing (with a record) and reading the header.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from relay.clock import Clock
from relay.config import Settings
from relay.inbound import refusals
from relay.inbound.aliases import AliasCache
from relay.inbound.header import Header, HeaderTooLarge, body_hash, head
from relay.inbound.refusals import Refusal
from relay.moderation.policy import Policy, PolicyBook
from relay.senderauth import Authenticator
from relay.store import events
from relay.store.committer import Committer, Merged
from relay.store.conversations import Conversation
from relay.store.database import log_store_failure
from relay.store.events import event_values
from relay.store.messages import AcceptOutcome
from relay.store.reads import Reads
from relay.store.state import read_state
from relay.workers import tasks
from relay.workers.pool import LARGE, BudgetExceeded, Pool, WorkerLost

log = logging.getLogger("relay.intake")


class Context:
    def __init__(self, settings: Settings, engine: AsyncEngine, committer: Committer, clock: Clock,
                 authenticator: Authenticator, policies: PolicyBook, pool: Pool,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.domain = settings.relay.domain
        self.engine = engine
        self.committer = committer
        self.clock = clock
        self.authenticator = authenticator
        self.policies = policies
        self.pool = pool  # the worker processes that do a message's CPU work
        self.aliases = AliasCache(monotonic)
        self.reads = Reads(engine)  # the accept path's reads, one hop each (relay/store/reads.py)
        self.on_queued: Callable[[], None] = lambda: None  # the delivery worker's wake-up
        self._verp_secret = ""

    async def verp_secret(self) -> str:
        """The secret that signs the relay's bounce and reply addresses (read once from the store)."""
        if not self._verp_secret:
            self._verp_secret = await read_state(self.engine, "verp_secret")
        return self._verp_secret

    def policy_of(self, pair: Conversation) -> Policy:
        """The policy in force for a conversation: its own, else its program's."""
        program = self.settings.programs.get(pair.program_id)
        return self.policies.get(pair.policy or (program.policy if program else ""))

    async def refuse(self, refusal: Refusal, *, pair_id: int | None = None, **detail: Any) -> Refusal:
        """Record the refusal as an event (committed before the client hears the refusal, so it can be
        listed at once) and hand it back to be raised. The record is a merged job: refusals of many
        sessions that wait at once share one transaction and one INSERT; one session's refusals are
        capped by smtp.max_refused_recipients. Best effort: a refusal changes nothing else."""
        values = event_values(
            "refused", self.clock.now(), pair_id=pair_id, reason=refusal.reason,
            reply=refusal.reply, **detail,
        )
        try:
            await self.committer.run(Merged(_write_events, values))
        except Exception as exc:  # the refusal still stands; the record is best effort
            log_store_failure(log, exc, "could not record a refusal event")
        log.info("refused %s: %s", refusal.reason, detail)
        return refusal

    async def unchanged(self, outcome: AcceptOutcome, pair_id: int, remote: str | None, rcpt: str | None = None,
                        ) -> None:
        """Raise the 451 refusal when the message was not written because its conversation changed meanwhile
        (relay/store/messages.Basis). Its record names the alias and the client, no address: the change may
        be an erasure of the sender. The remembered aliases are dropped, so the retry reads the conversation
        as it is now."""
        if outcome.changed:
            self.aliases.forget()
            raise await self.refuse(refusals.changed(), pair_id=pair_id, remote=remote, rcpt=rcpt)

    async def header(self, raw: bytes, detail: dict[str, Any], pair_id: int | None = None,
                     whole: bool = False) -> Header:
        """Read the header in a worker (`whole`: parse the body too); an unreadable header is a clear refusal.

        Of a large message only the header travels to the worker (no 20 MB copy through a pipe, no turn in the
        large lane for a few KB of parsing); its body hash is computed here, in a thread, meanwhile."""
        try:
            if whole or len(raw) <= LARGE:
                return await self.pool.run(tasks.header, raw, whole)
            found, digest = await asyncio.gather(self.pool.run(tasks.header, head(raw), False),
                                                 asyncio.to_thread(body_hash, raw))
            return dataclasses.replace(found, body_hash=digest)
        except (HeaderTooLarge, BudgetExceeded, WorkerLost) as exc:
            raise await self.refuse(refusals.from_worker(exc), pair_id=pair_id, **detail) from None
        except Exception:  # a parser edge case nobody has met yet: a clear, permanent refusal, and a log
            log.exception("reading the message header failed")
            raise await self.refuse(refusals.unreadable_header(), pair_id=pair_id, **detail) from None


async def _write_events(connection: Any, values: list[dict[str, Any]]) -> list[None]:
    await events.write(connection, values)
    return [None] * len(values)
