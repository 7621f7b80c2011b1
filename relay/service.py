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

from relay.clock import Clock, SystemClock
from relay.config import Settings, SmtpConfig
from relay.console.server import ConsoleServer
from relay.delivery.transports import MaildirTransport, SmtpTransport, Transport
from relay.delivery.worker import DeliveryWorker
from relay.dkim import signer_from_settings
from relay.intake import Intake
from relay.moderation.sweeps import HoldSweeper
from relay.smtp.handler import RelayHandler
from relay.smtp.limits import Monotonic
from relay.smtp.server import SmtpServer
from relay.store.committer import Committer
from relay.store.database import create_engine, migrate

log = logging.getLogger("relay.service")


def transport_factory(settings: Settings) -> Callable[[], Transport]:
    delivery = settings.relay.delivery
    if delivery.transport == "maildir":
        root = settings.resolve(delivery.maildir)
        return lambda: MaildirTransport(root)
    if delivery.ca_file:
        delivery = delivery.model_copy(update={"ca_file": str(settings.resolve(delivery.ca_file))})
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
                 monotonic: Monotonic = time.monotonic, console: bool = False) -> None:
        """`clock` is the relay's time (store, sweeps, queue); `monotonic` times the SMTP limits;
        `console`: serve the review console too (on console.host:console.port)."""
        signer = signer_from_settings(settings)  # a bad DKIM key stops the start before anything is opened
        self.settings = settings
        self.clock = clock or SystemClock()
        self.engine = create_engine(settings.database_url)
        self.committer = Committer(self.engine)
        self.intake = Intake(settings, self.engine, self.committer, self.clock)
        self.handler = RelayHandler(self.intake)
        self.smtp = SmtpServer(self.handler, _resolved_smtp(settings), settings.relay.domain, monotonic)
        owner = f"{socket.gethostname()}:{settings.relay.smtp.port}"
        self.worker = DeliveryWorker(
            settings.relay.delivery, self.committer, self.engine, self.clock, transport_factory(settings), owner,
            sign=signer.sign if signer is not None else None,
        )
        self.intake.on_queued = self.worker.wake
        self.sweeper = HoldSweeper(settings, self.engine, self.clock, self.intake.policies, self.worker.wake)
        self.console = ConsoleServer(settings, self.engine, self.clock, self.intake.policies) if console else None

    async def start(self) -> Running:
        await migrate(self.engine)
        # The console first: a wrong console setting stops the start before mail is accepted.
        console_url = await self.console.start() if self.console is not None else None
        self.committer.start()
        host, port = await self.smtp.start()
        self.worker.start()
        self.sweeper.start()
        return Running(host, port, console_url)

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.stop()
        await self.smtp.stop()
        await self.sweeper.stop()
        await self.worker.stop()
        await self.committer.close()
        await self.engine.dispose()


async def serve(settings: Settings, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    relay = Relay(settings, console=settings.relay.console.enabled)
    running = await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        await on_ready(relay, running)
    log.info("mentor-relay ready on %s:%s for %s", running.smtp_host, running.smtp_port, settings.relay.domain)
    await stop.wait()
    log.info("stopping: no new connections; finishing messages in flight")
    await relay.stop()
    log.info("stopped cleanly")
