"""Transports: hand one outbound message to the smarthost (aiosmtplib) or write it to a maildir.

A transport answers with the server's reply text, or raises TemporaryFailure (retry later) or
PermanentFailure (give up and record). An SmtpTransport keeps its connection open between messages.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import aiosmtplib

from relay.config import DeliveryConfig


class TemporaryFailure(Exception):
    pass


class Unreachable(TemporaryFailure):
    """No session with the smarthost: the connection, its greeting, TLS or EHLO failed before any message
    was offered. Nothing about a message: the delivery worker pauses (relay/delivery/worker.py) rather than
    retrying each queued entry on its own schedule."""


class PermanentFailure(Exception):
    pass


async def _now() -> None:
    return None


HandingOver = Callable[[], Awaitable[None]]


class Transport(Protocol):
    async def send(self, mail_from: str, rcpt: str, raw: bytes, handing_over: HandingOver = _now) -> str:
        """Hand one message over; `handing_over` is awaited just before the step after which the message
        may be the receiver's (the last line of DATA, the file write): the delivery worker limits how
        many messages are past it and not yet recorded (relay/delivery/worker.py)."""
        ...

    async def close(self, hang_up: bool = False) -> None:
        """Close the connection: politely (QUIT), or at once when `hang_up` (the stop grace is over)."""
        ...


class SmtpTransport:
    """One connection to the smarthost, opened on first use and reused; reopened after errors."""

    def __init__(self, config: DeliveryConfig, local_hostname: str) -> None:
        self.config = config
        self.local_hostname = local_hostname
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        client = aiosmtplib.SMTP(
            hostname=self.config.host,
            port=self.config.port,
            local_hostname=self.local_hostname,
            start_tls=self.config.starttls,
            cert_bundle=self.config.ca_file,
            timeout=self.config.timeout.total_seconds(),
        )
        await client.connect()
        if self.config.username:
            try:
                password = self._password()
            except TemporaryFailure:
                client.close()
                raise
            await client.login(self.config.username, password)
        self._client = client
        return client

    def _password(self) -> str:
        """Read at each connection, so a rotated secret is used without a restart; never logged."""
        if self.config.password_file:
            try:
                return Path(self.config.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise TemporaryFailure(f"no smarthost password: cannot read password_file "
                                       f"{self.config.password_file!r} ({exc.strerror})") from None
        password = os.environ.get(self.config.password_env or "")
        if password is None:
            raise TemporaryFailure(f"no smarthost password: environment variable {self.config.password_env!r} "
                                   "is not set")
        return password

    async def send(self, mail_from: str, rcpt: str, raw: bytes, handing_over: HandingOver = _now) -> str:
        try:
            client = await self._connect()
        except aiosmtplib.SMTPAuthenticationError as exc:  # our configuration, not the message: keep retrying
            await self._reset(broken=True)
            raise TemporaryFailure(f"the smarthost refused our credentials: {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._reset(broken=True)
            raise Unreachable(f"smarthost unreachable: {type(exc).__name__}: {exc}") from None
        try:
            options = ["BODY=8BITMIME"] if _has_8bit(raw) and client.supports_extension("8bitmime") else []
            await client.mail(mail_from, options=options)
            await client.rcpt(rcpt)
            return await _data(client, wire_form(raw), self.config.timeout.total_seconds(), handing_over)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._reset()
            first = exc.recipients[0]
            raise _classified(first.code, first.message) from None
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise _classified(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._reset(broken=True)
            raise TemporaryFailure(f"session with the smarthost lost: {type(exc).__name__}: {exc}") from None

    async def _reset(self, broken: bool = False) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if broken:
                client.close()
            else:
                await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()

    async def close(self, hang_up: bool = False) -> None:
        await self._reset(broken=hang_up)


def _classified(code: int, message: str) -> Exception:
    text = f"{code} {message}"
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


def _has_8bit(raw: bytes) -> bool:
    return not raw.isascii()  # one pass in C, word at a time (a regex took 55 ms on 20 MB)


_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")


def wire_form(raw: bytes) -> bytes:
    """The DATA payload for `raw`: every line ending CRLF, lines starting with "." stuffed, the lone dot.

    aiosmtplib does this with two regex substitutions that touch every line (about 190 ms of the event loop for
    20 MB); the relay's outbound messages already end their lines with CRLF, which three counts in C confirm,
    so here it is one `replace` (only when a line starts with a dot) and one concatenation."""
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf or raw.count(b"\r") != crlf:  # bare CR or LF: normalise as aiosmtplib would
        raw = _LINE_ENDINGS.sub(b"\r\n", raw)
    if raw.startswith(b"."):
        raw = b"." + raw
    if b"\r\n." in raw:
        raw = raw.replace(b"\r\n.", b"\r\n..")
    return raw + (b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n")


async def _data(client: aiosmtplib.SMTP, payload: bytes, timeout: float, handing_over: HandingOver) -> str:
    """DATA with a payload already in wire form: aiosmtplib's `data()` would normalise it again on the loop."""
    start = await client.execute_command(b"DATA")
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    await handing_over()
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(payload)
    response = await protocol.read_response(timeout=timeout)
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response.message


class MaildirTransport:
    """Writes each message into <maildir>/<recipient address>/new, as a local mail client reads it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def send(self, mail_from: str, rcpt: str, raw: bytes, handing_over: HandingOver = _now) -> str:
        folder = self.root / _safe_folder(rcpt)

        def write() -> str:
            folder.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(folder, create=True)
            return box.add(raw)

        await handing_over()
        try:
            key = await asyncio.to_thread(write)
        except OSError as exc:
            raise TemporaryFailure(f"maildir write failed: {exc}") from None
        return f"stored in {folder} as {key}"

    async def close(self, hang_up: bool = False) -> None:
        return None


def _safe_folder(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", address).lstrip(".") or "unknown"
