"""`mentor-relay serve`: the SMTP server, the group committer and the delivery worker in one process.

SIGTERM or SIGINT: stop accepting, let messages in flight finish, finish sends under way, commit,
close the store, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from relay import memory, warmup
from relay.archive.retention import purge_expired
from relay.clock import Clock, SystemClock
from relay.config import Settings, SmtpConfig
from relay.console.server import ConsoleServer
from relay.delivery.transports import MaildirTransport, SmtpTransport, Transport
from relay.delivery.worker import DeliveryWorker
from relay.digests import sweep as digest_sweep
from relay.holdqueue.actions import in_thread
from relay.holdqueue.sweeps import HoldSweeper
from relay.inbound.router import Intake
from relay.metrics import sweep_timer
from relay.nudges import sweep as nudge_sweep
from relay.nudges.child import ChildSweep
from relay.nudges.scheduler import Scheduler
from relay.preflight import preflight
from relay.safeguarding.sweep import SafeguardingSweeper
from relay.senderauth import Authenticator, Resolver
from relay.senderauth.dkim_check import DkimResult
from relay.smtp.handler import RelayHandler
from relay.smtp.limits import Monotonic, ReadBudget
from relay.smtp.server import SmtpServer
from relay.store import checkpoints
from relay.store.committer import Committer
from relay.store.database import create_engine, migrate, store_counts
from relay.workers import tasks
from relay.workers.pool import Pool

log = logging.getLogger("relay.service")

HOLD_SWEEP_EVERY = 60.0  # seconds
SAFEGUARDING_SWEEP_EVERY = 60.0  # urgent follow-ups and the digest of automatic rejections
NUDGE_SWEEP_EVERY = 300.0
DIGEST_SWEEP_EVERY = 300.0  # a digest waits at most this long after its period (or the quiet hours) ended
RETENTION_SWEEP_EVERY = 24 * 3600.0  # the daily purge of expired pairs (relay/archive/retention.py)


def transport_factory(settings: Settings) -> Callable[[], Transport]:
    delivery = settings.relay.delivery
    if delivery.transport == "maildir":
        root = settings.resolve(delivery.maildir)
        return lambda: MaildirTransport(root)
    paths = {key: str(settings.resolve(value)) for key in ("ca_file", "password_file")
             if (value := getattr(delivery, key)) is not None}
    if paths:
        delivery = delivery.model_copy(update=paths)
    return lambda: SmtpTransport(delivery, settings.relay.domain)


def _resolved_smtp(settings: Settings) -> SmtpConfig:
    """The SMTP settings with certificate paths taken relative to the config file, like every path."""
    smtp = settings.relay.smtp
    paths = {key: str(settings.resolve(value)) for key in ("tls_cert", "tls_key")
             if (value := getattr(smtp, key)) is not None}
    return smtp.model_copy(update=paths) if paths else smtp


@dataclass
class Running:
    smtp_host: str
    smtp_port: int
    console_url: str | None = None


class Relay:
    """The assembled relay; `start` and `stop` are separate so tests can run it in-process."""

    def __init__(self, settings: Settings, clock: Clock | None = None,
                 monotonic: Monotonic = time.monotonic, resolver: Resolver | None = None,
                 console: bool = False, sweep_in_child: bool = False) -> None:
        """`clock` is the relay's time (store, sweeps, queue); `monotonic` times the SMTP limits and the alias cache;
        `resolver` answers the DNS questions of sender authentication (the system's by default);
        `console`: serve the review console too (on console.host:console.port); `sweep_in_child`: the
        scheduled nudge sweeps run in a process of their own (relay/nudges/child.py; `serve` does, so that
        a large sweep never holds up intake), at the relay's clock."""
        # Every policy and the DKIM key are checked before anything is opened: a mistake stops the start.
        policies, signer = preflight(settings)
        self.settings = settings
        self.clock = clock or SystemClock()
        self.engine = create_engine(settings.database_url)
        # SQLite: commits do not checkpoint the WAL within their turn to write; a task of its own does.
        checkpoints.outside_commits(self.engine)
        self.checkpointer = checkpoints.WalCheckpointer(self.engine)
        self.committer = Committer(self.engine)
        # The message work (parse, moderate, anonymise, DKIM) runs in worker processes (relay/workers).
        self.pool = Pool(settings, policies, signer)
        # DKIM verification in the pool too (keys asked in a thread first); in-process (`workers: 0`) the whole
        # check stays in one thread, off the loop.
        verifier = None if self.pool.in_process else self._verify_dkim
        self.intake = Intake(settings, self.engine, self.committer, self.clock,
                             Authenticator(settings.relay.sender_auth, resolver, verifier), policies, self.pool,
                             monotonic)
        smtp = settings.relay.smtp
        self.handler = RelayHandler(self.intake, smtp.max_refused_recipients, smtp.stranger_reads_per_session,
                                    ReadBudget(smtp.stranger_reads_per_ip_per_minute, smtp.per_ip_limits_exempt,
                                               monotonic))
        # Large messages worked on at once: one per worker the pool lets large tasks use (workers - 1), and one
        # being committed (the writer takes them one at a time); at least two.
        self.smtp = SmtpServer(self.handler, _resolved_smtp(settings), settings.relay.domain, monotonic,
                               large_at_once=max(2, self.pool.workers))
        owner = f"{socket.gethostname()}:{settings.relay.smtp.port}"
        self.worker = DeliveryWorker(
            settings.relay.delivery, self.committer, self.engine, self.clock, transport_factory(settings), owner,
            sign=self._sign if signer is not None else None,
        )
        self.intake.on_queued = self.worker.wake
        self.sweeper = HoldSweeper(settings, self.engine, self.clock, self.intake.policies, self.worker.wake)
        self.nudge_child = ChildSweep(settings.path, self.engine) if sweep_in_child else None
        self.scheduler = Scheduler()
        self.scheduler.every(HOLD_SWEEP_EVERY, "hold-sweep", self.sweeper.run_once)
        self.safeguarding = SafeguardingSweeper(settings, self.engine, self.clock, self.intake.policies,
                                                self.worker.wake)
        self.scheduler.every(SAFEGUARDING_SWEEP_EVERY, "safeguarding-sweep", self._scheduled_safeguarding)
        self.scheduler.every(NUDGE_SWEEP_EVERY, "nudge-sweep", self._scheduled_nudges)
        self.scheduler.every(DIGEST_SWEEP_EVERY, "digest-sweep", self._scheduled_digests)
        self.scheduler.every(RETENTION_SWEEP_EVERY, "retention-purge", self._scheduled_purge)
        # a release from the console builds its copy in the worker processes (in a thread without them)
        offload = in_thread if self.pool.in_process else self.pool.run
        self.console = (ConsoleServer(settings, self.engine, self.clock, self.intake.policies, offload)
                        if console else None)

    async def _verify_dkim(self, raw: bytes, answers: dict[str, bytes | str | None]) -> list[DkimResult]:
        return await self.pool.run(tasks.verify_dkim, raw, answers)

    async def _sign(self, raw: bytes) -> bytes:
        field = await self.pool.run(tasks.signature, raw)
        return field + raw if field else raw

    async def _scheduled_safeguarding(self) -> None:
        await self.safeguarding.run_once()

    async def _scheduled_purge(self) -> None:
        report = await purge_expired(self.engine, self.clock, self.settings)
        if report.purged:
            log.info("retention: purged the message bodies of %d pair(s)", len(report.purged))

    async def _scheduled_nudges(self) -> None:
        if self.nudge_child is None:
            await self.sweep_nudges()
            return
        with sweep_timer("nudges"):
            result = await self.nudge_child.run(self.clock.now())
        self._after_nudges(bool(result.ended), bool(result.sent))

    async def _scheduled_digests(self) -> None:
        await self.sweep_digests()

    async def sweep_digests(self) -> digest_sweep.DigestResult:
        """One digest sweep (relay/digests/sweep.py) at the relay's clock; wakes delivery if it queued."""
        with sweep_timer("digests"):
            result = await digest_sweep.run(self.settings, self.engine, self.clock)
        if result.sent or result.released:
            self.worker.wake()
        return result

    async def sweep_nudges(self) -> nudge_sweep.SweepResult:
        with sweep_timer("nudges"):
            result = await nudge_sweep.run(self.settings, self.engine, self.clock)
        self._after_nudges(bool(result.ended), bool(result.sent))
        return result

    def _after_nudges(self, ended: bool, sent: bool) -> None:
        """What a nudge sweep (in this process or its own) leaves to the relay."""
        if ended:
            self.intake.forget_aliases()  # an ended pair's alias must not be taken for an active one
        if sent:
            self.worker.wake()

    async def start(self) -> Running:
        await migrate(self.engine)
        # The console first: a wrong console setting stops the start before mail is accepted.
        console_url = await self.console.start() if self.console is not None else None
        await self.pool.start()
        await asyncio.to_thread(warmup.suffix_lists)  # before the first session, not during it
        self.committer.start()
        self.checkpointer.start()
        host, port = await self.smtp.start()
        # The name of this instance's claims on the queue: with port 0 in the config, the port it got, so
        # that two instances on one host never share a name (each would send what the other claimed).
        self.worker.owner = f"{socket.gethostname()}:{port}"
        self.worker.start()
        self.scheduler.start()
        return Running(host, port, console_url)

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.stop()
        await self.smtp.stop()
        if self.nudge_child is not None:
            self.nudge_child.stop()  # a sweep under way ends after its transaction; the scheduler waits for it
        await self.scheduler.stop()
        await self.worker.stop()
        await self.pool.stop()
        await self.committer.close()
        await self.checkpointer.stop()
        self.intake.context.reads.close()
        counts = store_counts(self.engine)
        log.info("store: %d statements, %d connection checkouts since start", counts.statements, counts.checkouts)
        await self.engine.dispose()


async def serve(settings: Settings, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    memory.return_large_blocks()  # large messages' memory goes back to the system when they are done
    relay = Relay(settings, console=settings.relay.console.enabled, sweep_in_child=True)
    # Handlers first: a SIGTERM that comes as soon as the port is open still means a clean stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await relay.start()
    warmup.freeze()  # the process's start-up objects (only in `serve`: tests start many relays in one process)
    if on_ready is not None:
        await on_ready(relay, running)
    log.info("mentor-relay ready on %s:%s for %s", running.smtp_host, running.smtp_port, settings.relay.domain)
    await stop.wait()
    log.info("stopping: no new connections; finishing messages in flight")
    await relay.stop()
    log.info("stopped cleanly")
