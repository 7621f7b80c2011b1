"""The listening SMTP server on the relay's own event loop (no Controller thread)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref

from aiosmtpd.smtp import SMTP

from relay.config import SmtpConfig
from relay.smtp.handler import RelayHandler

log = logging.getLogger("relay.smtp")


class SmtpServer:
    def __init__(self, handler: RelayHandler, config: SmtpConfig, hostname: str) -> None:
        self.handler = handler
        self.config = config
        self.hostname = hostname
        self._server: asyncio.base_events.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.tls_context = self._tls_context()

    def _tls_context(self) -> ssl.SSLContext | None:
        if not (self.config.tls_cert and self.config.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def _protocol(self) -> SMTP:
        session = SMTP(
            self.handler,
            hostname=self.hostname,
            ident="mentor-relay",
            data_size_limit=self.config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self.tls_context,
            require_starttls=False,
        )
        self._sessions.add(session)
        return session

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.config.host, self.config.port)
        sockname = self._server.sockets[0].getsockname()
        log.info("SMTP listening on %s:%s", sockname[0], sockname[1])
        return str(sockname[0]), int(sockname[1])

    def _in_transaction(self) -> int:
        open_transactions = 0
        for session in self._sessions:
            envelope = getattr(session, "envelope", None)
            if envelope is not None and envelope.mail_from is not None and session.transport is not None:
                open_transactions += 1
        return open_transactions

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting; let transactions under way (MAIL sent, DATA not yet answered) finish
        within `grace` seconds; then close the remaining, idle, sessions."""
        self.handler.accepting = False
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (self._in_transaction() or self.handler.in_flight.count) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self._in_transaction() or self.handler.in_flight.count:
            log.warning("%d transactions still open after %.0fs; closing them", self._in_transaction(), grace)
        for session in list(self._sessions):
            transport = getattr(session, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()
        self._sessions.clear()
