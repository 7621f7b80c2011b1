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

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting connections, let messages in flight finish, then close idle sessions."""
        self.handler.accepting = False
        if self._server is not None:
            self._server.close()
        if not await self.handler.in_flight.wait_idle(grace):
            log.warning("%d messages still in flight after %.0fs", self.handler.in_flight.count, grace)
        for session in list(self._sessions):
            transport = getattr(session, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()
        self._sessions.clear()
