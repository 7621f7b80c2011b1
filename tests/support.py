"""Test harness: a real aiosmtpd smarthost sink on a loopback port, and a real relay with its config.

Nothing here imitates a module of the relay: the relay runs as it runs in production (in-process, or
as a `mentor-relay serve` subprocess), talking to a real SMTP sink over 127.0.0.1, storing into a real
SQLite file under the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.dnsserver import loopback_dns

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "relay.test"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SinkHandler:
    """Accepts everything (or answers with `reply` for the next N messages) and records it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripted: list[str] = []  # replies to give instead of accepting, one per message
        self._arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.scripted:
            return self.scripted.pop(0)
        raw = envelope.original_content or b""
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(raw)))
        self._arrived.set()
        return "250 2.0.0 sink stored it"

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Wait until at least `count` messages arrived (bounded by `timeout`)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"sink got {len(self.received)} of {count} messages within {timeout}s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.received


class Sink:
    """A real SMTP server on 127.0.0.1, ephemeral port, on the test's event loop."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> Sink:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self.handler, hostname="sink.test", decode_data=False, enable_SMTPUTF8=True),
            "127.0.0.1", 0,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        return await self.handler.wait_for(count, timeout)

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Layout:
    """A relay configuration written into a tmp dir (relay.yaml, programs/, policies/)."""

    root: Path
    smtp_port: int
    sink_port: int | None
    overrides: dict[str, Any] = field(default_factory=dict)
    console_port: int = field(default_factory=free_port)  # the review console, when a test serves it

    @property
    def config(self) -> Path:
        return self.root / "relay.yaml"

    def write(self) -> Path:
        (self.root / "programs").mkdir(parents=True, exist_ok=True)
        (self.root / "policies").mkdir(exist_ok=True)
        for name in ("adult-professional", "youth-strict"):
            (self.root / "policies" / f"{name}.yaml").write_text(f"name: {name}\n")
        program = {
            "id": "stem", "name": "STEM mentoring", "goals": ["Explore engineering careers"],
            "coordinator": "coordinator@school.example", "policy": "adult-professional",
            "region": "US", "timezone": "America/New_York",
            "welcome": False,  # the welcome mail has its own tests (tests/test_welcome.py)
        }
        (self.root / "programs" / "stem.yaml").write_text(yaml.safe_dump(program))
        delivery: dict[str, Any] = {"poll_interval": "0.2s", "retry_schedule": ["1s", "1s", "1s"]}
        if self.sink_port is None:
            delivery.update(transport="maildir", maildir="maildir")
        else:
            delivery.update(transport="smtp", host="127.0.0.1", port=self.sink_port)
        config: dict[str, Any] = {
            "domain": DOMAIN,
            "database": "sqlite:///relay.db",
            "smtp": {"host": "127.0.0.1", "port": self.smtp_port, "max_message_size": 2 * 1024 * 1024},
            "console": {"host": "127.0.0.1", "port": self.console_port},
            "delivery": delivery,
            "programs_dir": "programs",
            "policies_dir": "policies",
            # sender authentication asks the tests' own DNS server on loopback, never the machine's
            "sender_auth": {"nameservers": [loopback_dns()], "dns_timeout": "3s"},
        }
        for key, value in self.overrides.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        self.config.write_text(yaml.safe_dump(config))
        return self.config


def cli(layout: Layout, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real `mentor-relay` command line against the layout's config."""
    return subprocess.run(
        [sys.executable, "-m", "relay", "--config", str(layout.config), *args],
        capture_output=True, text=True, input=stdin, timeout=timeout, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


MENTOR = {"email": "jose.mueller@uni.example.net", "name": "José Müller", "handle": "Oak"}
MENTEE = {"email": "jane.doe@mail.example.org", "name": "Jane Doe", "handle": "Maple"}


async def acli(layout: Layout, *args: str, timeout: float = 60,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`cli` without blocking the event loop: use it for commands that write while a relay runs on
    this loop (a blocked loop cannot finish the relay's transaction that the command waits for)."""
    return await asyncio.to_thread(cli, layout, *args, timeout=timeout, stdin=stdin)


async def acreate_pair(layout: Layout, mentor: dict[str, str] = MENTOR, mentee: dict[str, str] = MENTEE,
                       program: str = "stem", *extra: str) -> dict[str, Any]:
    return await asyncio.to_thread(create_pair, layout, mentor, mentee, program, *extra)


def create_pair(layout: Layout, mentor: dict[str, str] = MENTOR, mentee: dict[str, str] = MENTEE,
                program: str = "stem", *extra: str) -> dict[str, Any]:
    import json

    result = cli(
        layout, "pair", "create", "--program", program,
        "--mentor-email", mentor["email"], "--mentor-name", mentor["name"], "--mentor-handle", mentor["handle"],
        "--mentee-email", mentee["email"], "--mentee-name", mentee["name"], "--mentee-handle", mentee["handle"],
        *extra, "--json",
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


async def send(port: int, raw: bytes, mail_from: str, rcpt: str | list[str]) -> tuple[int, str]:
    """Send raw bytes to the relay; returns the final (code, text), refusals included."""
    recipients = [rcpt] if isinstance(rcpt, str) else rcpt
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
    try:
        await client.connect()
    except (aiosmtplib.SMTPConnectError, OSError) as exc:
        return 0, f"not connected: {exc}"
    try:
        await client.mail(mail_from)
        for address in recipients:
            await client.rcpt(address)
        response = await client.data(raw)
        return response.code, response.message
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    except aiosmtplib.SMTPServerDisconnected as exc:
        return 0, f"disconnected: {exc}"
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


def simple_message(sender: str, to: str, subject: str, body: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", None) or email.utils.make_msgid(domain="client.example")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


class ServeProcess:
    """`mentor-relay serve` as a real subprocess (for kill -9 and SIGTERM tests)."""

    def __init__(self, layout: Layout, log: Path) -> None:
        self.layout = layout
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ServeProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - stays open for the process's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "--config", str(self.layout.config), "serve"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.layout.smtp_port), timeout=0.5):
                    return self
            except OSError:
                pass
            try:  # wait a little on the process itself: returns at once if it died
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"serve exited early ({code}):\n{self.log_path.read_text()}")
        raise AssertionError("serve did not start listening in time")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.terminate()
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code


async def eventually(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check()` (sync or async) until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
