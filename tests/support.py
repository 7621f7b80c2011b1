"""Test harness: a real aiosmtpd smarthost sink on a loopback port, and a real relay with its config.

Nothing here imitates a module of the relay: the relay runs as it runs in production (in-process, or
as a `mentor-relay serve` subprocess), talking to a real SMTP sink over 127.0.0.1, storing into a real
SQLite file under the test's tmp dir or a fresh PostgreSQL database (tests/database.py).

Writing a test (the fixtures are in tests/conftest.py):

    async def test_something(layout: Layout, sink: Sink, relay: Relay) -> None:
        pair = await acreate_pair(layout)                 # the real CLI: `mentor-relay pair create`
        code, _ = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], "Hi", "x"),
                             MENTEE["email"], pair["mentor_alias"])
        (arrived,) = await sink.wait_for(1)               # what the smarthost received
        (row,) = await rows(layout, select(messages.c.decision))   # the store, through SQLAlchemy

* `layout` writes relay.yaml, programs/ and policies/ into the test's tmp dir; its `database` is the
  test's own store (SQLite file, or a PostgreSQL database made for this test and dropped after it when
  MENTOR_RELAY_TEST_DATABASE is set). Build another `Layout(...)` the same way: it gets its own store.
* Read the store through the relay's store functions or the tables of relay.store.schema:
  `await read_store(layout, some_store_function)`, `await rows(layout, statement)`, or `rows_now(...)`
  from sync code (it runs in a thread of its own). Never open relay.db with sqlite3: on PostgreSQL
  there is no file.
* The command line: `await acli(layout, ...)` (`acli_json`, `acreate_pair`) from async code; `cli(...)` and
  `create_pair(...)` only from sync code. They block their thread until the command is done, and the command may
  wait for the store's write lock that a relay on the test's loop holds (not_on_a_running_loop): on a thread
  with a running event loop they refuse to run.
* Ports: `free_port()` hands out a port below the kernel's ephemeral range, different for each pytest-xdist
  worker, so a port cannot be taken by another worker's outgoing connection in between.
* Time: inject relay.clock.FixedClock into `Relay(...)` instead of sleeping; wait with `eventually` or
  `sink.wait_for`, both bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Row, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from tests.database import new_database
from tests.dnsserver import loopback_dns

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "relay.test"
T = TypeVar("T")


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
        self.refused: set[str] = set()  # addresses answered 550 at RCPT (a mailbox that does not exist)
        self._arrived = asyncio.Event()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.scripted:
            return self.scripted.pop(0)
        raw = envelope.original_content or b""
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(raw)))
        self._arrived.set()
        return "250 2.0.0 sink stored it"

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Wait until at least `count` messages arrived (bounded by `timeout`)."""
        return await self.wait_until(len, count, timeout, "messages")

    async def wait_until(self, counted: Callable[[list[Received]], int], count: int, timeout: float,
                         what: str) -> list[Received]:
        """Wait, woken by each arrival, until `counted(received)` reaches `count` (bounded by `timeout`)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while counted(self.received) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"sink got {counted(self.received)} of {count} {what} within {timeout}s")
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


# Listening ports for relays and consoles are picked below the kernel's ephemeral range (32768-60999 on
# Linux), where no outgoing connection and no bind to port 0 lands, in a slice of its own for each
# pytest-xdist worker, from a random start (several test runs on one machine), each checked free first.
_PORT_SLICE = 1000
_PORT_BASE = 20000
_handed_out: set[int] = set()
_next_port: list[int] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on, for a server the test starts (bounded search)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = _PORT_BASE + (int(worker) % 12 if worker.isdigit() else 0) * _PORT_SLICE
    if not _next_port:
        _next_port.append(random.randrange(_PORT_SLICE))
    for _ in range(_PORT_SLICE):
        port = low + _next_port[0] % _PORT_SLICE
        _next_port[0] += 1
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        if len(_handed_out) > _PORT_SLICE // 2:  # a long run: ports handed out long ago are closed again
            _handed_out.clear()
        return port
    raise AssertionError(f"no free port between {low} and {low + _PORT_SLICE}")


@dataclass
class Layout:
    """A relay configuration written into a tmp dir (relay.yaml, programs/, policies/)."""

    root: Path
    smtp_port: int
    sink_port: int | None
    overrides: dict[str, Any] = field(default_factory=dict)
    console_port: int = field(default_factory=free_port)  # the review console, when a test serves it
    database: str = ""  # relay.yaml's database URL; the first write() makes the test's own store

    @property
    def config(self) -> Path:
        return self.root / "relay.yaml"

    def write(self) -> Path:
        (self.root / "programs").mkdir(parents=True, exist_ok=True)
        if not self.database:
            self.database = new_database(self.root)
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
            "database": self.database,
            "smtp": {"host": "127.0.0.1", "port": self.smtp_port, "max_message_size": 2 * 1024 * 1024},
            "console": {"host": "127.0.0.1", "port": self.console_port},
            "delivery": delivery,
            "programs_dir": "programs",
            "policies_dir": "policies",
            # sender authentication asks the tests' own DNS server on loopback, never the machine's
            "sender_auth": {"nameservers": [loopback_dns()], "dns_timeout": "3s"},
            # the message work in-process: starting worker processes costs about a second per relay;
            # tests/test_engine.py, test_end_to_end.py and test_service.py run with worker processes
            "workers": 0,
        }
        for key, value in self.overrides.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        self.config.write_text(yaml.safe_dump(config))
        return self.config


def store_url(layout: Layout) -> str:
    """The layout's store as the relay opens it (async driver; SQLite paths made absolute)."""
    from relay.config import load_settings

    return load_settings(layout.config).database_url


async def read_store(layout: Layout, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`await read(connection)` on the layout's store: a relay.store function, or any async function of an
    SQLAlchemy AsyncConnection. The engine is relay.store.database.create_engine's, opened for this read."""
    from relay.store.database import create_engine

    engine = create_engine(store_url(layout))
    try:
        async with engine.connect() as connection:
            return await read(connection)
    finally:
        await engine.dispose()


async def rows(layout: Layout, statement: Executable) -> list[Row[Any]]:
    """The rows of one SQLAlchemy statement (e.g. select() over relay.store.schema's tables) on the store."""

    async def run(connection: AsyncConnection) -> list[Row[Any]]:
        return list((await connection.execute(statement)).all())

    return await read_store(layout, run)


async def nothing_queued(layout: Layout) -> bool:
    """True once the relay has handed every queued outbound entry to the smarthost: for a test that counts
    mail from some point on, so that notices queued earlier (farewells, check-ins) cannot arrive late into
    the count. Use with `eventually`."""
    from sqlalchemy import func, select

    from relay.store.schema import outbound

    ((waiting,),) = await rows(layout, select(func.count()).select_from(outbound).where(outbound.c.state == "queued"))
    return bool(waiting == 0)


def rows_now(layout: Layout, statement: Executable) -> list[Row[Any]]:
    """`rows` for sync code (sync tests, sync helpers): runs on an event loop in a thread of its own."""
    return in_thread(lambda: rows(layout, statement))


def in_thread(make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
    """Run the coroutine `make()` to completion on a fresh event loop in another thread (usable whether
    or not the caller's thread runs a loop); bounded by `timeout`."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(_awaited(make))).result(timeout)


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def not_on_a_running_loop(what: str, instead: str) -> None:
    """Refuse a call that blocks its thread until another process is done with the store, made on a thread
    whose asyncio event loop is running (an async test, fixture or helper). A relay serving on that loop may
    hold the store's write lock (an open transaction, a start-up sweep) that the other process waits for, while
    the blocked loop waits for the process: a deadlock that ends only when the process's busy timeout does
    (on a loaded CI, `group create` printed nothing). Run it in a thread of its own instead (`instead`)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop on this thread (a sync test, asyncio.to_thread's worker): blocking is harmless
    raise AssertionError(f"{what} blocks the running event loop, which a relay on it may need to release the store's "
                         f"write lock that the command waits for (a deadlock until the busy timeout): use {instead}")


def cli(layout: Layout, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real `mentor-relay` command line against the layout's config, as a process of its own
    (forked from a helper that imported the relay once: tests/clirunner.py). Sync code only: from a coroutine,
    `await acli(...)` (not_on_a_running_loop says why)."""
    from tests import clirunner

    not_on_a_running_loop("cli()", "`await acli(...)`")
    return clirunner.run(["--config", str(layout.config), *args], cwd=REPO, stdin=stdin, timeout=timeout,
                         env={**os.environ, "PYTHONPATH": str(REPO)})


MENTOR = {"email": "jose.mueller@uni.example.net", "name": "José Müller", "handle": "Oak"}
MENTEE = {"email": "jane.doe@mail.example.org", "name": "Jane Doe", "handle": "Maple"}


async def acli(layout: Layout, *args: str, timeout: float = 60,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`cli` without blocking the event loop: use it for commands that write while a relay runs on
    this loop (a blocked loop cannot finish the relay's transaction that the command waits for)."""
    return await asyncio.to_thread(cli, layout, *args, timeout=timeout, stdin=stdin)


async def acli_json(layout: Layout, *args: str) -> Any:
    """What `await acli(layout, *args)` prints, read as JSON (the caller passes --json): for checks polled
    with `eventually(lambda: acli_json(...))`, which awaits the coroutine the lambda returns."""
    import json

    return json.loads((await acli(layout, *args)).stdout)


async def acreate_pair(layout: Layout, mentor: dict[str, str] = MENTOR, mentee: dict[str, str] = MENTEE,
                       program: str = "stem", *extra: str) -> dict[str, Any]:
    return await asyncio.to_thread(create_pair, layout, mentor, mentee, program, *extra)


def create_pair(layout: Layout, mentor: dict[str, str] = MENTOR, mentee: dict[str, str] = MENTEE,
                program: str = "stem", *extra: str) -> dict[str, Any]:
    import json

    not_on_a_running_loop("create_pair()", "`await acreate_pair(...)`")
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

    def start(self, timeout: float = 90) -> ServeProcess:
        """Start serve; return once its SMTP port accepts (bounded: a busy machine with worker processes and
        PostgreSQL took over 30 s). Sync code only (serve migrates and sweeps the store as it starts): from a
        coroutine, `await asyncio.to_thread(ServeProcess(...).start)`."""
        not_on_a_running_loop("ServeProcess.start()", "`await asyncio.to_thread(ServeProcess(...).start)`")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - stays open for the process's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "--config", str(self.layout.config), "serve"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            start_new_session=True,  # a process group of its own, as a terminal gives it (interrupt_group)
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
        self.process.kill()
        self.process.wait(10)
        self._log.close()
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        raise AssertionError(f"serve did not start listening within {timeout:.0f}s; its log ends:\n{tail}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self._log.close()

    def interrupt_group(self) -> None:
        """Ctrl-C in the terminal that runs serve: SIGINT to serve and to every process under it."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, and wait for serve to finish (its last writes included). Sync code only: from a coroutine,
        `await asyncio.to_thread(process.terminate)`."""
        not_on_a_running_loop("ServeProcess.terminate()", "`await asyncio.to_thread(process.terminate)`")
        assert self.process is not None
        self.process.terminate()
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code


class OneTurn:
    """An awaitable that suspends its coroutine for one turn of the event loop, as awaiting any future would:
    other tasks run once, and no time is waited for."""

    def __await__(self):  # type: ignore[no-untyped-def]
        yield


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


@contextlib.contextmanager
def write_transactions(engine: AsyncEngine) -> Iterator[list[bool]]:
    """The write transactions that the current task (a sweep awaited in it) begins meanwhile on the store of
    `engine`, one True each; not those of the relay's other tasks, such as delivery. On SQLite each takes
    the store's write lock, which intake's commits wait for."""
    begun: list[bool] = []
    mine = asyncio.current_task()

    def begin(connection: Any) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # another thread's (the committer's), without an event loop
            return
        if task is mine and connection.get_execution_options().get("write", False):
            begun.append(True)

    event.listen(engine.sync_engine, "begin", begin)
    try:
        yield begun
    finally:
        event.remove(engine.sync_engine, "begin", begin)
