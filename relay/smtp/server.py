"""The listening SMTP server on the relay's own event loop (no Controller thread).

It owns what happens to a connection before and around the handler: the connection limits (checked before
the greeting: a client over one gets a 421 and is closed), STARTTLS when a certificate is configured, the
timeouts for idle and slow clients, and the graceful stop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import weakref
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

from relay.config import SmtpConfig
from relay.smtp.data import BulkTurns, Data, Outcome, read_data
from relay.smtp.handler import RelayHandler
from relay.smtp.limits import ConnectionLimits, Monotonic, Refusal, RefusalLog, Ticket
from relay.smtp.paths import parsed_path

log = logging.getLogger("relay.smtp")

TIMEOUT_REPLY = b"421 4.4.2 Timeout exceeded, closing connection\r\n"
_REFUSALS = {
    Outcome.TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    Outcome.TOO_MUCH: "552 Error: Too much mail data",
    Outcome.NO_ROOM: "452 4.3.1 Insufficient system storage, please try again later",
}
LARGE_AT_ONCE = 2  # spooled (large) messages worked on at once by default; the others wait in their temporary files


class RelaySession(SMTP):
    """aiosmtpd's SMTP session, holding its place under the connection limits until it closes.

    aiosmtpd's `timeout` (here command_timeout) runs from one recognised command to the next, so it bounds idle
    clients; before the first command only greeting_timeout applies (a connection that never speaks gives its
    place back soon); DATA gets data_timeout for the whole transfer and the reply after it. A client timed out
    is told why (421 4.4.2) before the connection closes. A session whose RCPTs were refused
    max_refused_recipients times is closed after the 421 the handler gives to its next RCPT."""

    def __init__(self, handler: RelayHandler, ticket: Ticket, data_timeout: float, greeting_timeout: float,
                 bulk_turns: BulkTurns | None = None, large_messages: asyncio.Semaphore | None = None,
                 **options: Any) -> None:
        super().__init__(handler, **options)
        self.ticket = ticket
        self.bulk_turns = bulk_turns
        self.large_messages = large_messages
        self.data_timeout = data_timeout
        self.greeting_timeout = min(greeting_timeout, self._timeout_duration)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._reset_timeout(self.greeting_timeout)  # the first recognised command resets it to command_timeout

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's parse of a MAIL or RCPT path, each distinct argument parsed once (relay/smtp/paths.py),
        with its limit on the local part's length."""
        address, rest = parsed_path(arg)
        if address and self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str) -> None:
        await super().smtp_RCPT(arg)
        if getattr(self.session, "closing", False) and self.transport is not None:
            self.transport.close()  # the 421 is written first: close() flushes what is buffered

    def connection_lost(self, error: Exception | None) -> None:
        self.ticket.release()  # also called when a failed STARTTLS handshake ends the session
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._reset_timeout(self.data_timeout)
        await self._take_data(arg)
        if self.transport is not None:
            self._reset_timeout()  # back to waiting for the next command

    async def _take_data(self, arg: str) -> None:
        """aiosmtpd's smtp_DATA with the transfer read in bulk (relay/smtp/data.py) instead of line by line.

        Replies and checks are aiosmtpd 1.4.6's: 503 without RCPT, 501 with an argument, 552 over the size
        limit and 500 for a line too long (both after the lone dot), then the handler's DATA hook. Ours: 452 when
        a large message could not be written to its temporary file (a full disk: the client tries again later)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data = await read_data(self._reader, self.data_size_limit, self.line_length_limit, self.bulk_turns)
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if data.outcome is Outcome.LOST:
            return
        if data.outcome is not Outcome.NOMINAL:
            self._set_post_data_state()
            await self.push(_REFUSALS[data.outcome])
            return
        try:
            if data.spool is not None and self.large_messages is not None:
                async with self.large_messages:  # a large message is read from its file when its turn comes
                    await self._handle_data(data)
            else:
                await self._handle_data(data)
        finally:
            data.close()  # a spooled message whose session ended while it waited for its turn

    async def _handle_data(self, data: Data) -> None:
        assert self.envelope is not None
        # decode_data is off (the relay keeps bytes exact), so content and original_content are one object
        if data.spool is not None:
            # megabytes: read off the loop; the spool is the thread's from here (if the session ends meanwhile,
            # the thread's read still closes the file)
            spool, data.spool = data.spool, None
            content = await asyncio.to_thread(spool.read)
        else:
            content = data.content
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # a new envelope: the message's bytes are let go before the reply
        await self.push("250 OK" if status is MISSING else status)

    def _timeout_cb(self) -> None:
        transport = self.transport
        if transport is None or _tls_handshake_under_way(transport):
            return  # a handshake has asyncio's own timeout; when it fails, the session ends
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(TIMEOUT_REPLY)
        super()._timeout_cb()


class Gate(asyncio.Protocol):
    """The first protocol of every connection: hands it over to a new session, or answers 421 and closes it."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        address = _peer_address(transport)
        admitted = self.server.limits.admit(address)
        if isinstance(admitted, Refusal):
            self.server.note_refusal(admitted, address)
            transport.write(admitted.reply.encode("ascii") + b"\r\n")
            transport.close()
            return
        session = self.server.session(admitted)
        transport.set_protocol(session)
        session.connection_made(transport)


class SmtpServer:
    def __init__(self, handler: RelayHandler, config: SmtpConfig, hostname: str,
                 clock: Monotonic = time.monotonic, large_at_once: int = LARGE_AT_ONCE) -> None:
        self.handler = handler
        self.config = config
        self.hostname = hostname
        self.limits = ConnectionLimits(
            config.max_connections, config.max_connections_per_ip, config.connections_per_ip_per_minute,
            exempt=config.per_ip_limits_exempt, clock=clock,
        )
        self.refusals = RefusalLog(clock=clock)
        self._server: asyncio.base_events.Server | None = None
        self._sessions: weakref.WeakSet[RelaySession] = weakref.WeakSet()
        self.tls_context = self._tls_context()
        self.bulk_turns = BulkTurns()  # large transfers share the loop (relay/smtp/data.py)
        # large messages are worked on a few at a time (as many as the workers and the writer can take: see
        # Relay), and a message waiting in its spool file (relay/smtp/data.py) is not in the relay's memory
        self.large_messages = asyncio.Semaphore(large_at_once)

    def _tls_context(self) -> ssl.SSLContext | None:
        if not (self.config.tls_cert and self.config.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def session(self, ticket: Ticket) -> RelaySession:
        """A new SMTP session for an admitted connection."""
        session = RelaySession(
            self.handler,
            ticket,
            self.config.data_timeout.total_seconds(),
            self.config.greeting_timeout.total_seconds(),
            self.bulk_turns,
            self.large_messages,
            hostname=self.hostname,
            ident="mentor-relay",
            data_size_limit=self.config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self.tls_context,
            require_starttls=False,
            timeout=self.config.command_timeout.total_seconds(),
        )
        self._sessions.add(session)
        return session

    def note_refusal(self, refusal: Refusal, address: str | None) -> None:
        """Log a refused connection, at most one line per minute (a flood of refusals is one line)."""
        unlogged = self.refusals.note()
        if unlogged is not None:
            log.warning("refusing SMTP connections: %s (this one from %s; %d more refused since the last such line)",
                        refusal.reason, address or "an unknown address", unlogged)

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Gate(self), self.config.host, self.config.port)
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


def _peer_address(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _tls_handshake_under_way(transport: asyncio.BaseTransport) -> bool:
    """After STARTTLS the session's transport is the TLS one; until the handshake is done it has no ssl_object."""
    return transport.get_extra_info("sslcontext") is not None and transport.get_extra_info("ssl_object") is None
