"""The delivery worker: claims due queue entries, sends them over a few connections, records results.

Wakes when intake queues something in this process, and polls every `poll_interval` for entries
queued by another process (a CLI release while `serve` runs) or coming due for a retry. Temporary
failures are retried on the configured schedule; a permanent failure, or the end of the schedule, is
recorded as failed (and listed by `mentor-relay queue list --state failed`).

With DKIM on, each attempt is signed just before it is sent (in a worker process, relay/workers:
canonicalising a large message would stall the event loop), so a retry carries a fresh signature and the queue keeps the
unsigned message. A signing failure is a temporary failure: logged, retried, never a lost message.

Each result (sent, deferred, failed) goes to the committer's urgent lane as soon as the smarthost has
answered, and a connection sends its next entry only once that result is committed. Across connections,
at most `delivery.unrecorded` entries (default 2) are past the point of handing over (the last line of
DATA written) without a durable record: a connection waits for a free place before it writes that line,
and gives the place back once the result is committed. So a crash re-sends at most that many entries (the
same bytes, so the same Message-ID), however many connections there are; the connections still open,
sign, and send MAIL, RCPT and DATA side by side. Results that arrive together share one transaction (the
sent marks merge into one UPDATE and one INSERT).

When the smarthost cannot be reached (transports.Unreachable: no session, before any message was offered),
the worker stops taking entries, gives the batch's untried ones back as they were (no attempt counted, no
deferral written) and pauses: the poll interval, doubled at each pause in a row up to LONGEST_PAUSE.

At a stop (SIGTERM), the sends under way get `delivery.stop_grace` to finish; a smarthost that has not
answered by then is hung up on, and those entries' claims are given back, so the next start sends them
(at most one per connection, as after a crash): a stalled smarthost cannot hold a stop for its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from relay.bounces import bounce_address
from relay.clock import Clock
from relay.config import DeliveryConfig
from relay.delivery.transports import PermanentFailure, TemporaryFailure, Transport, Unreachable
from relay.metrics import SMARTHOST
from relay.store import outbound as queue
from relay.store.committer import Committer, Merged
from relay.store.database import log_store_failure
from relay.store.state import read_state

log = logging.getLogger("relay.delivery")

LONGEST_PAUSE = 60.0  # seconds: the pause while the smarthost cannot be reached doubles up to this


class DeliveryWorker:
    def __init__(
        self,
        config: DeliveryConfig,
        committer: Committer,
        engine: Any,
        clock: Clock,
        transport_factory: Callable[[], Transport],
        owner: str | None = None,
        sign: Callable[[bytes], Awaitable[bytes]] | None = None,
    ) -> None:
        self.config = config
        self.committer = committer
        self.engine = engine
        self.clock = clock
        self.transport_factory = transport_factory
        self.owner = owner or f"{socket.gethostname()}"
        self.sign = sign
        self._wake = asyncio.Event()
        self._stopping = False
        self._hang_up = False  # set when the stop grace is over: close connections without a QUIT
        self._task: asyncio.Task[None] | None = None
        self._unrecorded = asyncio.Semaphore(config.unrecorded)  # see the module's docstring
        self._verp_secret = ""
        self.mark_delays: list[float] = []  # seconds from the smarthost's reply to the committed record
        self._unreachable: str | None = None  # why a send of this batch could not reach the smarthost
        self._pause = 0.0  # seconds of the last pause (0: the smarthost answered since)
        self.pauses = 0  # how many times delivery paused because the smarthost could not be reached

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = self._hang_up = False  # (a worker stopped may be started again)
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        """Finish the sends under way (for at most `stop_grace`), give back unsent claims, stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        grace = self.config.stop_grace.total_seconds()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            log.warning("sends still under way after the stop grace of %.0f s: hanging up; their entries "
                        "are sent again at the next start", grace)
            self._hang_up = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _release_own_claims(self) -> bool:
        """Give back the claims an earlier run of this instance left. A busy store (another writer holding its
        lock longer than a writer waits: a long import, a sweep) is waited out, one warning line a try, for as
        long as the worker runs: the worker must not end on it, or nothing would be delivered until a restart.
        False when the worker was stopped first."""
        while not self._stopping:
            try:
                await self.committer.run(lambda c: queue.release_claims(c, self.owner))
                return True
            except Exception as exc:
                if not log_store_failure(log, exc, "could not give back this instance's earlier claims; retrying"):
                    raise
            with contextlib.suppress(TimeoutError):  # a second between tries, or at once when stopped
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
        return False

    async def _run(self) -> None:
        self._verp_secret = await read_state(self.engine, "verp_secret")
        if not await self._release_own_claims():
            return
        transports = [self.transport_factory() for _ in range(self.config.connections)]
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    batch = []
                    if await self._anything_due():  # a read: no write lock while the queue is idle
                        batch = await self.committer.run(lambda c: queue.claim_due(
                            c, self.owner, self.clock.now(), self.config.lease, 50 * len(transports)))
                except Exception as exc:
                    log_store_failure(log, exc, "could not claim queue entries; retrying")
                    batch = []
                if batch:
                    await self._send_batch(batch, transports)
                    if self._unreachable is not None:
                        await self._paused()
                    else:
                        self._pause = 0.0
                        SMARTHOST.unreachable = False
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval.total_seconds())
        finally:
            for transport in transports:
                await transport.close(hang_up=self._hang_up)
            if self.mark_delays:
                delays = sorted(self.mark_delays)
                log.info("sent marks: %d, committed %.1f ms (median) / %.1f ms (max) after the smarthost's reply",
                         len(delays), delays[len(delays) // 2] * 1000, delays[-1] * 1000)
            try:
                await self.committer.run(lambda c: queue.release_claims(c, self.owner))
            except Exception:
                log.exception("could not release claims at shutdown")

    async def _anything_due(self) -> bool:
        async with self.engine.connect() as connection:
            return await queue.any_due(connection, self.clock.now())

    async def _send_batch(self, batch: list[Any], transports: list[Transport]) -> None:
        pending: asyncio.Queue[Any] = asyncio.Queue()
        for entry in batch:
            pending.put_nowait(entry)

        async def sender(transport: Transport) -> None:
            while not pending.empty() and not self._stopping and self._unreachable is None:
                await self._deliver(pending.get_nowait(), transport)

        await asyncio.gather(*(sender(t) for t in transports))

    async def _deliver(self, entry: Any, transport: Transport) -> None:
        holding = False

        async def handing_over() -> None:
            nonlocal holding
            await self._unrecorded.acquire()
            holding = True

        try:
            await self._attempt(entry, transport, handing_over)
        finally:
            if holding:  # the result is committed (or could not be: then the lease gives the entry back)
                self._unrecorded.release()

    async def _attempt(self, entry: Any, transport: Transport, handing_over: Callable[[], Awaitable[None]]) -> None:
        raw = entry.raw
        if self.sign is not None:
            try:
                raw = await self.sign(raw)
            except Exception as exc:
                log.exception("queue_id=%s outbound=%s DKIM signing failed", entry.message_id, entry.id)
                await self._temporary(entry, f"DKIM signing failed: {type(exc).__name__}: {exc}")
                return
        try:
            envelope_sender = bounce_address(entry.id, self._verp_secret, entry.mail_from.rpartition("@")[2])
            response = await transport.send(envelope_sender, entry.rcpt, raw, handing_over)
        except Unreachable as exc:  # nothing was offered: the entry stays as it was, untried
            self._unreachable = str(exc)
            return
        except TemporaryFailure as exc:
            await self._temporary(entry, str(exc))
            return
        except PermanentFailure as exc:
            error = str(exc)
            log.warning("queue_id=%s outbound=%s permanent failure: %s", entry.message_id, entry.id, error)
            await self.committer.run(lambda c: queue.mark_failed(c, entry, self.clock.now(), error), urgent=True)
            return
        except Exception as exc:  # a transport bug must not kill the worker or lose the entry
            log.exception("queue_id=%s outbound=%s unexpected send error", entry.message_id, entry.id)
            await self._temporary(entry, f"unexpected error: {type(exc).__name__}")
            return
        log.info("queue_id=%s outbound=%s delivered: %s", entry.message_id, entry.id, response.strip()[:200])
        answered = time.monotonic()
        await self.committer.run(Merged(queue.mark_sent_many, (entry, self.clock.now(), response.strip()[:500])),
                                urgent=True)
        if len(self.mark_delays) < 100_000:
            self.mark_delays.append(time.monotonic() - answered)

    async def _paused(self) -> None:
        """The smarthost could not be reached: give the batch's untried entries back as they were (their
        attempts and retry times unchanged: an outage is not the messages' fault, and trying each of a long
        queue would write a deferral for each), then wait before the next try: the poll interval, doubled at
        each pause in a row up to LONGEST_PAUSE, or until the stop."""
        reason, self._unreachable = self._unreachable, None
        self._pause = min(max(self._pause * 2, self.config.poll_interval.total_seconds()), LONGEST_PAUSE)
        self.pauses += 1
        SMARTHOST.unreachable = True
        SMARTHOST.pauses += 1
        try:
            await self.committer.run(lambda c: queue.release_claims(c, self.owner))
        except Exception as exc:  # their leases run out instead
            log_store_failure(log, exc, "could not give back the claimed queue entries")
        log.warning("delivery paused for %.1f s: %s", self._pause, reason)
        deadline = time.monotonic() + self._pause
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            self._wake.clear()  # new mail does not end the pause; the queue is read again after it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _temporary(self, entry: Any, error: str) -> None:
        now = self.clock.now()
        schedule = self.config.retry_schedule
        if entry.attempts >= len(schedule):
            total = sum(schedule, timedelta())
            error = f"gave up after {entry.attempts + 1} attempts over {total}: {error}"
            log.warning("queue_id=%s outbound=%s %s", entry.message_id, entry.id, error)
            await self.committer.run(lambda c: queue.mark_failed(c, entry, now, error), urgent=True)
            return
        retry_at = now + schedule[entry.attempts]
        log.info("queue_id=%s outbound=%s deferred until %s: %s",
                 entry.message_id, entry.id, retry_at.isoformat(), error)
        await self.committer.run(lambda c: queue.mark_deferred(c, entry, now, retry_at, error), urgent=True)
