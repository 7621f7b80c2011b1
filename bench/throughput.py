"""Throughput benchmark: mentor-relay against a bare aiosmtpd server, on the same machine, in one run.

What it measures
  1. Baseline: a bare aiosmtpd server whose handle_DATA only answers "250 OK" (stores nothing),
     running in its own subprocess. The bench sends N ~2 KB text messages over C concurrent SMTP
     sessions (default 20); each session sends its share one after the other (MAIL/RCPT/DATA
     repeated on one connection). Reported: accepted messages/s, and the per-message accept latency
     (from sending MAIL to receiving the 250 after DATA), p50 and p99.
  2. Relay: a throw-away config dir (relay.yaml, SQLite file, one program, its policy), one pair per 30
     messages enrolled with relay.enrol (what `pair create` runs; the shipped policies hold a pair's 41st message
     of a day, and the names are rare words so that the identity rule finds nothing),
     `python -m relay serve` as a subprocess, delivering over SMTP to a
     counting aiosmtpd sink in a third subprocess; sender authentication (SPF, DMARC) asks a DNS
     server on loopback in a fourth, whose zone authorises the mentee's domain from 127.0.0.1 (TTL 1 h).
     The same N messages go from each mentee's enrolled address (envelope and From:) to its mentor's
     alias over the same C sessions (the bare server gets the very same envelopes).
     Reported as above, plus end-to-end messages/s: from the first
     MAIL until the sink has received all N.

The bench process is only the SMTP client; every server runs in its own process. Timing starts once
all sessions are connected and greeted (EHLO), so connection set-up is not counted. The last line is
`relay/bare throughput ratio: X.XX` (accepted messages/s of the relay divided by the bare server's).

Options: --policy NAME (a file of policies/, default adult-professional: the shipped policy with its rules)
and --dkim rsa|ed25519|off (default rsa: a 2048-bit key made with `mentor-relay dkim keygen` in the
bench's temporary directory signs every delivery).

CPU by stage (per accepted message): the relay process's event-loop thread (SMTP, intake and delivery
coordination), its other threads (the aiosqlite store thread, the pool's hand-off threads, DNS/sender
auth) — both read from /proc/<pid>/task/<tid>/stat before and after the run — and each worker task kind
(header, prepare, sign): the pool sums each task's CPU (the worker's /proc stat before and after the
task) and logs the sums when the relay stops ("worker CPU by task: ..."), which the bench reads from the
relay's log. "server CPU" counts the relay's whole process tree (workers and the forkserver included).

Usage: .venv/bin/python bench/throughput.py --messages N [--connections 20] [--policy NAME] [--dkim rsa]
Exit status 1 if a message was refused, lost or not delivered (the figures are printed all the same).
The same file also runs the helper servers (hidden --role option); no need to call that by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "relay.test"
MENTOR = {"email": "jose.mueller@uni.example.net", "name": "José Müller", "handle": "Oak"}
MENTEE = {"email": "jane.doe@mail.example.org", "name": "Jane Doe", "handle": "Maple"}
DURABILITY = "SQLite journal_mode=WAL, synchronous=FULL (fsync per group commit, before each 250)"
DURABILITY_PG = "PostgreSQL as the server is set up (a commit per group commit, before each 250)"

HELPER_MAX_SECONDS = 3600.0   # a helper server exits on its own after this long, whatever happens
STATUS_INTERVAL = 0.02        # how often the sink rewrites its status file (seconds)
POLL_INTERVAL = 0.01          # how often the bench polls files written by its subprocesses
START_TIMEOUT = 60.0          # for a subprocess to start listening
STOP_TIMEOUT = 30.0           # for a subprocess to exit after SIGTERM, before SIGKILL
SMTP_TIMEOUT = 60.0           # per SMTP command


# --- helper servers (each runs in its own subprocess) ---------------------------------------------


class NullHandler:
    """Accepts every message and keeps nothing: the cost of aiosmtpd itself."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


class CountingHandler:
    """Counts messages (and distinct Message-IDs, to notice duplicate deliveries)."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[bytes] = set()
        self.last_at = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        found = re.search(rb"^Message-ID:[ \t]*(\S+)", raw, re.IGNORECASE | re.MULTILINE)
        self.ids.add(found.group(1) if found else b"#%d" % self.count)
        self.count += 1
        self.last_at = time.time()  # wall clock: compared with the bench process's clock
        return "250 2.0.0 sink got it"

    def status(self) -> dict[str, Any]:
        return {"count": self.count, "distinct": len(self.ids), "last_at": self.last_at}


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def serve_helper(role: str, port_file: Path, status_file: Path | None) -> None:
    """Listen on an ephemeral 127.0.0.1 port, write the port to `port_file`, serve until SIGTERM."""
    if role == "dns":
        await serve_dns(port_file)
        return
    handler: NullHandler | CountingHandler = CountingHandler() if role == "sink" else NullHandler()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname=f"{role}.bench", decode_data=False, enable_SMTPUTF8=True),
        "127.0.0.1", 0,
    )
    write_atomically(port_file, str(server.sockets[0].getsockname()[1]))
    deadline = loop.time() + HELPER_MAX_SECONDS
    written: dict[str, Any] | None = None
    while not stop.is_set() and loop.time() < deadline:
        await asyncio.sleep(STATUS_INTERVAL)
        if isinstance(handler, CountingHandler) and status_file is not None and handler.status() != written:
            written = handler.status()
            write_atomically(status_file, json.dumps(written))
    server.close()


async def serve_dns(port_file: Path) -> None:
    """The tests' loopback DNS server (tests/dnsserver.py): the relay's sender authentication asks it,
    never the machine's resolver, and the mentee's domain authorises loopback by SPF, as in the tests."""
    sys.path.insert(0, str(REPO))
    from tests.dnsserver import ZONE, loopback_dns

    ZONE.ttl = 3600  # as real zones do: answers are cached, as they would be in production
    write_atomically(port_file, loopback_dns().rpartition(":")[2])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), HELPER_MAX_SECONDS)


# --- the messages ---------------------------------------------------------------------------------

PARAGRAPHS = [
    "Thank you for your last email and for the links about civil engineering programs. I read the "
    "article about bridge inspections twice, and I think I finally understand why the load tests matter "
    "so much. My physics teacher said the same thing about safety factors last week.",
    "This week we started the robotics unit at school. Our team built a small line-following robot and "
    "it kept drifting to the left, so I spent most of Tuesday afternoon recalibrating the sensors. In "
    "the end it was a loose wire, which was both annoying and a relief.",
    "I have been thinking about your question on what I enjoy most. I like the moment when a problem "
    "that looked impossible turns into a list of small steps. Maybe that is why I like programming more "
    "than I expected, even though I still make a lot of mistakes with loops.",
    "Could you tell me a bit more about how you chose your university? My parents keep asking me to "
    "make a shortlist before the summer, and I am not sure whether I should look at the program "
    "rankings, the internships, or just how the campus feels when I visit.",
    "I also wanted to ask how you organise your week when there are several deadlines at once. I tried "
    "your idea of writing the three most important tasks on a card every morning, and it helped on "
    "Monday and Wednesday, but by Friday I had forgotten to do it.",
    "Our science fair is in five weeks. I am planning to measure how much water different soils keep "
    "after rain, because our garden floods every spring. I would love your advice on how to make the "
    "measurements fair, and how many samples would be enough to say something useful.",
    "Last Saturday I volunteered at the library's coding club for younger students. Explaining "
    "variables to ten-year-olds was harder than I thought, but one of them built a tiny quiz game by "
    "the end of the morning and was very proud of it. So was I, honestly.",
]


def message_body(index: int) -> str:
    """About 2 KB of plain text, different for every message."""
    picked = [textwrap.fill(PARAGRAPHS[(index + k) % len(PARAGRAPHS)], 72) for k in range(6)]
    return (
        "Hi,\n\n" + "\n\n".join(picked)
        + f"\n\nThis is note number {index + 1} in our conversation, I think!\n\n"
        "Thanks again for your time, and have a good week.\n\nBest wishes,\nMaple\n"
    )


Mail = tuple[bytes, str, str]  # raw message, envelope sender, recipient


def build_messages(count: int, pairs: Sequence[Pair]) -> list[Mail]:
    """`count` small text messages, message i from the mentee of pair i % len(pairs) to its mentor's alias,
    each with its own Message-ID (CRLF lines)."""
    messages = []
    for index in range(count):
        pair = pairs[index % len(pairs)]
        message = EmailMessage()
        message["From"] = f"{pair.mentee_name} <{pair.mentee_email}>"
        message["To"] = pair.mentor_alias
        message["Subject"] = f"Week {index % 52 + 1}: robots, rankings and the science fair"
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<bench.{index}.{os.getpid()}@{pair.mentee_email.rpartition('@')[2]}>"
        message.set_content(message_body(index))
        messages.append((message.as_bytes(policy=policy.SMTP), pair.mentee_email, pair.mentor_alias))
    return messages


# --- the client -----------------------------------------------------------------------------------


@dataclass
class SendResult:
    """What the client saw: latencies of accepted messages, refusals and errors by their text."""

    attempted: int = 0
    latencies: list[float] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0   # time.time() when the gate opened (first MAIL)
    elapsed: float = 0.0   # seconds from the gate until the last session finished
    client_cpu: float = 0.0

    @property
    def accepted(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0


async def open_session(port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, local_hostname="bench.client", timeout=SMTP_TIMEOUT, start_tls=False,
    )
    await client.connect()
    await client.ehlo()
    return client


async def close_session(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


async def send_share(
    client: aiosmtplib.SMTP, share: Sequence[Mail], gate: asyncio.Event, result: SendResult,
) -> None:
    """Send `share` one message after the other on one session, once `gate` opens."""
    await gate.wait()
    for raw, sender, rcpt in share:
        result.attempted += 1
        began = time.perf_counter()
        try:
            await client.mail(sender)
            await client.rcpt(rcpt)
            await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            result.refusals[f"{exc.code} {exc.message}"] += 1
            try:
                await client.rset()
            except (aiosmtplib.SMTPException, OSError) as reset_error:
                result.errors[f"RSET failed: {type(reset_error).__name__}: {reset_error}"] += 1
                return
            continue
        except (aiosmtplib.SMTPException, OSError) as exc:  # connection lost: give up this session
            result.errors[f"{type(exc).__name__}: {exc}"] += 1
            return
        result.latencies.append(time.perf_counter() - began)


async def drive(ports: Sequence[int], messages: Sequence[Mail], connections: int, timeout: float) -> SendResult:
    """Send all messages over `connections` sessions (spread in turn over the servers on `ports`); timing
    starts when every session is greeted."""
    result = SendResult()
    clients = await asyncio.wait_for(asyncio.gather(
        *(open_session(ports[i % len(ports)]) for i in range(connections))), 60)
    gate = asyncio.Event()
    try:
        tasks = [
            asyncio.create_task(send_share(client, messages[i::connections], gate, result))
            for i, client in enumerate(clients)
        ]
        cpu_before = time.process_time()
        began = time.perf_counter()
        result.started = time.time()
        gate.set()
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        result.elapsed = time.perf_counter() - began
        result.client_cpu = time.process_time() - cpu_before
        for task in pending:
            task.cancel()
        if pending:
            result.errors[f"{len(pending)} sessions still sending after {timeout:.0f}s"] += 1
        for task in done:
            if task.exception() is not None:
                result.errors[f"session crashed: {task.exception()!r}"] += 1
    finally:
        await asyncio.gather(*(close_session(client) for client in clients), return_exceptions=True)
    return result


# --- subprocesses ---------------------------------------------------------------------------------


class Child:
    """A subprocess with its output in a log file; `stop` terminates, then kills after a bounded wait."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
        )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far (Linux /proc; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tree_cpu_seconds(self) -> float | None:
        """CPU of this process and every descendant (the relay's forkserver, workers and sweep processes): the live
        ones, and those that ended in between (counted in their parent's figures once it waited for them, so that
        the figure never goes down)."""
        total, seen, todo = 0.0, set(), [self.process.pid]
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            used = proc_cpu(f"/proc/{pid}/stat", reaped=True)
            if used is None:
                if pid == self.process.pid:
                    return None
                continue
            total += used
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(child) for child in children.read_text().split())
        return total

    def thread_cpu_seconds(self) -> tuple[float, float] | None:
        """(the main thread's CPU, the other threads' CPU) of this process: the relay's event loop, and
        its store/hand-off/DNS threads. A thread that ended in between is not counted."""
        pid = self.process.pid
        main = proc_cpu(f"/proc/{pid}/task/{pid}/stat")
        if main is None:
            return None
        others = sum(used for stat in Path(f"/proc/{pid}/task").glob("*/stat")
                     if stat.parent.name != str(pid) and (used := proc_cpu(str(stat))) is not None)
        return main, others

    def stop(self) -> int | None:
        """Terminate, wait up to STOP_TIMEOUT, then kill; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log_file.close()
        return self.process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def proc_cpu(stat_path: str, reaped: bool = False) -> float | None:
    """User + system CPU seconds from a /proc .../stat file (None if it is gone); with `reaped`, also those of the
    process's children that have ended and been waited for (a process's file only: a thread's has the same)."""
    try:
        fields = Path(stat_path).read_text().rpartition(")")[2].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until(check: Any, watched: Sequence[Child], timeout: float, what: str) -> Any:
    """Poll `check()` until it returns something truthy; fails if a watched child dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for child in watched:
            child.check_alive()
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}:\n{watched[0].tail()}")


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


@contextlib.contextmanager
def stopped_at_the_end(children: list[Child]) -> Iterator[None]:
    """Stop every child (those started in the block too) when the block ends; if it failed, show the last
    lines of each child's log first."""
    try:
        yield
    except Exception:
        for child in children:
            print(f"--- last lines of the {child.name} log ---\n{child.tail()}", file=sys.stderr)
        raise
    finally:
        for child in children:
            child.stop()


def start_helper(role: str, workdir: Path, children: list[Child]) -> tuple[Child, int]:
    """Start this script as a `role` server (bare or sink); returns the child and its port."""
    port_file = workdir / f"{role}.port"
    argv = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--port-file", str(port_file),
            "--status-file", str(workdir / f"{role}.status.json")]
    child = Child(role, argv, workdir / f"{role}.log")
    children.append(child)
    port = wait_until(lambda: read_text(port_file), [child], START_TIMEOUT, f"the {role} server to listen")
    return child, int(port)


def sink_status(workdir: Path) -> dict[str, Any]:
    text = read_text(workdir / "sink.status.json")
    return json.loads(text) if text else {"count": 0, "distinct": 0, "last_at": 0.0}


# --- the relay ------------------------------------------------------------------------------------


def write_relay_config(root: Path, sink_port: int, dns_port: int, policy_name: str, dkim: str,
                       database: str = "sqlite:///relay.db") -> Path:
    """relay.yaml (SMTP on port 0: the relay picks one; no console), a SQLite file, one program and its policy
    (copied from the repository's policies/, or an empty policy for --policy none), and a DKIM key."""
    (root / "programs").mkdir(parents=True)
    (root / "policies").mkdir()
    if policy_name == "none":
        (root / "policies" / "none.yaml").write_text("name: none\n")
    else:
        source = REPO / "policies" / f"{policy_name}.yaml"
        if not source.is_file():
            raise SystemExit(f"--policy {policy_name}: no such file {source}")
        (root / "policies" / source.name).write_text(source.read_text())
    program = {
        "id": "stem", "name": "STEM mentoring", "goals": ["Explore engineering careers"],
        "coordinator": "coordinator@school.example", "policy": policy_name,
        "region": "US", "timezone": "America/New_York",
    }
    (root / "programs" / "stem.yaml").write_text(yaml.safe_dump(program))
    config = {
        "domain": DOMAIN,
        "database": database,
        "smtp": {"host": "127.0.0.1", "port": 0, "max_message_size": 2 * 1024 * 1024},
        "console": {"enabled": False},  # nothing on a fixed port: a relay running beside the bench is left alone
        "delivery": {"transport": "smtp", "host": "127.0.0.1", "port": sink_port,
                     "poll_interval": "0.1s", "retry_schedule": ["1s", "1s", "1s"]},
        "programs_dir": "programs",
        "policies_dir": "policies",
        "sender_auth": {"nameservers": [f"127.0.0.1:{dns_port}"]},
    }
    path = root / "relay.yaml"
    path.write_text(yaml.safe_dump(config))
    if dkim != "off":
        done = subprocess.run(
            relay_cli(path, "dkim", "keygen", "--selector", "bench", "--algorithm", dkim, "--json"),
            capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if done.returncode != 0:
            raise RuntimeError(f"dkim keygen failed ({done.returncode}): {done.stderr.strip()}")
        config["dkim"] = {"selector": "bench", "private_key": json.loads(done.stdout)["private_key"]}
        path.write_text(yaml.safe_dump(config))
    return path


def relay_cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "relay", "--config", str(config), *args]


@dataclass(frozen=True)
class Pair:
    mentee_email: str
    mentee_name: str
    mentor_alias: str


PER_PAIR = 30  # messages per pair: the shipped policies hold a pair's 41st message in a day (rule `rate`)
SURNAMES = ["Quistgaard", "Vantongeren", "Oyelaran", "Kowalczyk", "Abernathy", "Nakashima", "Castellano",
            "Thorvaldsen", "Brzezinski", "Okonkwo"]


ENROL_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from relay.cli.common import with_store
from relay.clock import SystemClock
from relay.config import load_settings
from relay.enrol import Person, create_pair
settings = load_settings(Path(sys.argv[1]))
rows = json.loads(sys.stdin.read())
async def work(engine):
    made = []
    for mentor, mentee in rows:
        pair = await create_pair(settings, engine, SystemClock(), program_id="stem", mentor=Person(*mentor),
                                 mentee=Person(*mentee))
        made.append(pair.mentor.alias_address(settings.relay.domain))
    return made
print(json.dumps(asyncio.run(with_store(settings, work))))
"""


def enrol_pairs(config: Path, count: int) -> list[Pair]:
    """Enrol `count` pairs through relay.enrol.create_pair (what `pair create` runs), in one subprocess
    rather than one CLI start per pair; the mentees write from the domain that the loopback DNS
    authorises. Names are rare words, so that the identity rule has nothing to find."""
    rows, people = [], []
    for k in range(count):
        surname = SURNAMES[k % len(SURNAMES)]
        mentee = (f"mentee{k}@{MENTEE['email'].rpartition('@')[2]}", f"Ysolde {surname}", f"Maple{k}")
        rows.append(((f"mentor{k}@uni.example.net", f"Zebedee {surname}", f"Oak{k}"), mentee))
        people.append(mentee)
    done = subprocess.run(
        [sys.executable, "-c", ENROL_SCRIPT, str(config)], input=json.dumps(rows),
        capture_output=True, text=True, timeout=1800, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"enrolment failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    aliases = json.loads(done.stdout)
    return [Pair(email, name, alias) for (email, name, _), alias in zip(people, aliases, strict=True)]


def start_relay(config: Path, workdir: Path, children: list[Child], name: str = "relay") -> tuple[Child, int]:
    """`python -m relay serve`; the port is read from its "serving ... on HOST:PORT" line."""
    child = Child(name, relay_cli(config, "serve"), workdir / f"{name}.log")
    children.append(child)

    def port() -> int | None:
        found = re.search(r"serving \S+ on 127\.0\.0\.1:(\d+)", read_text(child.log) or "")
        return int(found.group(1)) if found else None

    return child, wait_until(port, [child], START_TIMEOUT, "the relay to listen")


def relay_log_problems(log: Path, limit: int = 5) -> tuple[int, list[str]]:
    """Lines of the relay's log at WARNING or above (or tracebacks, refusals, deferrals)."""
    pattern = re.compile(r" (WARNING|ERROR|CRITICAL) |Traceback|refused |deferred until")
    lines = [line for line in (read_text(log) or "").splitlines() if pattern.search(line)]
    return len(lines), lines[:limit]


# --- the two runs ---------------------------------------------------------------------------------


@dataclass
class RunReport:
    name: str
    sent: SendResult
    server_cpu: float | None = None
    stages: dict[str, float] = field(default_factory=dict)  # stage -> CPU seconds in the run
    notes_info: list[str] = field(default_factory=list)  # the relay's own summary lines at stop
    end_to_end: float | None = None     # seconds from the first MAIL until the sink had all N
    delivered: int | None = None
    distinct_delivered: int | None = None
    exit_status: int | None = None
    notes: list[str] = field(default_factory=list)


def cpu_delta(child: Child, before: float | None) -> float | None:
    after = child.cpu_seconds()
    return None if before is None or after is None else after - before


def run_bare(messages: list[Mail], connections: int, workdir: Path, children: list[Child],
             timeout: float) -> RunReport:
    server, port = start_helper("bare", workdir, children)
    cpu_before = server.cpu_seconds()
    sent = asyncio.run(drive([port], messages, connections, timeout))
    report = RunReport("bare aiosmtpd", sent, server_cpu=cpu_delta(server, cpu_before))
    report.exit_status = server.stop()
    return report


@dataclass
class RelaySetup:
    sink: Child
    config: Path
    pairs: list[Pair]


def prepare_relay(workdir: Path, children: list[Child], policy_name: str, dkim: str, count: int,
                  database: str | None = None) -> RelaySetup:
    """The sink (idle until the relay run), the relay's config dir, and one enrolled pair."""
    sink, sink_port = start_helper("sink", workdir, children)
    _dns, dns_port = start_helper("dns", workdir, children)
    config = write_relay_config(workdir / "relay", sink_port, dns_port, policy_name, dkim,
                                database or "sqlite:///relay.db")
    return RelaySetup(sink, config, enrol_pairs(config, max(1, math.ceil(count / PER_PAIR))))


def create_bench_database(server: str) -> str:
    """A new database on the PostgreSQL `server` for this run (asyncpg, the `postgres` extra); its URL."""
    name = f"mrbench_{os.getpid()}_{int(time.time())}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    return server.rsplit("/", 1)[0] + "/" + name


def drop_bench_database(server: str, url: str) -> None:
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def run_relay(setup: RelaySetup, messages: list[Mail], connections: int, workdir: Path,
              children: list[Child], timeout: float, instances: int = 1) -> RunReport:
    """The relay run: `instances` copies of `serve` on the same config (so the same store), the sessions
    spread over them in turn; CPU and stages are summed over the copies."""
    started = [start_relay(setup.config, workdir, children, "relay" if n == 0 else f"relay{n + 1}")
               for n in range(instances)]
    relays = [relay for relay, _ in started]
    cpu_before = [relay.tree_cpu_seconds() for relay in relays]
    threads_before = [relay.thread_cpu_seconds() for relay in relays]
    sent = asyncio.run(drive([port for _, port in started], messages, connections, timeout))
    report = RunReport("mentor-relay" if instances == 1 else f"mentor-relay x{instances}", sent)
    if sent.accepted:
        try:
            status = wait_until(lambda: (s := sink_status(workdir))["count"] >= sent.accepted and s,
                                [*relays, setup.sink], timeout, f"the sink to receive {sent.accepted} messages")
            report.end_to_end = status["last_at"] - sent.started
        except RuntimeError as exc:
            report.notes.append(str(exc).splitlines()[0])
    cpu_after = [relay.tree_cpu_seconds() for relay in relays]
    cpu = [(b, a) for b, a in zip(cpu_before, cpu_after, strict=True) if b is not None and a is not None]
    if len(cpu) == instances:
        report.server_cpu = sum(a - b for b, a in cpu)
    threads_after = [relay.thread_cpu_seconds() for relay in relays]
    threads = [(b, a) for b, a in zip(threads_before, threads_after, strict=True) if b is not None and a is not None]
    if len(threads) == instances:
        report.stages["event loop (SMTP, intake, delivery I/O)"] = sum(a[0] - b[0] for b, a in threads)
        report.stages["other threads (SQLite, hand-off, DNS)"] = sum(a[1] - b[1] for b, a in threads)
    time.sleep(0.2)  # let a late duplicate delivery, if any, show in the sink's count
    status = sink_status(workdir)
    report.delivered, report.distinct_delivered = status["count"], status["distinct"]
    statuses = [relay.stop() for relay in relays]
    report.exit_status = next((code for code in statuses if code), statuses[0])
    setup.sink.stop()
    statements = checkouts = 0
    for relay in relays:
        relay_log = read_text(relay.log) or ""
        prefix = "" if instances == 1 else f"{relay.name}: "
        report.notes_info += [prefix + line for line in
                              re.findall(r"(sent marks: .*|group commit: .*|store: \d+ statements.*)", relay_log)]
        store = re.findall(r"store: (\d+) statements, (\d+) connection checkouts", relay_log)
        if store:
            statements, checkouts = statements + int(store[-1][0]), checkouts + int(store[-1][1])
        found = re.findall(r"worker CPU by task: (.*)", relay_log)
        if found:  # "header 1.234 s/2000, prepare ..." (summed since the relay started: only the run's tasks)
            for name, seconds in re.findall(r"(\w+) ([\d.]+) s/\d+", found[-1]):
                report.stages[f"worker: {name}"] = report.stages.get(f"worker: {name}", 0.0) + float(seconds)
        problems, first = relay_log_problems(relay.log)
        if problems:
            report.notes.append(f"{relay.name} log has {problems} warning/refusal lines, first ones:")
            report.notes.extend(f"  {line}" for line in first)
    if statements and sent.accepted:
        per = sent.accepted
        report.notes_info.append(f"store per accepted message (intake + delivery + start-up): "
                                 f"{statements / per:.2f} statements, {checkouts / per:.2f} checkouts")
    return report


# --- the report -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of `values`, or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fmt(value: float | None, spec: str = ".1f", scale: float = 1.0) -> str:
    return "n/a" if value is None else format(value * scale, spec)


def rows(report: RunReport, count: int) -> list[str]:
    sent = report.sent
    e2e = report.end_to_end
    return [
        f"{sent.accepted}/{count}",
        f"{sum(sent.refusals.values())} / {sum(sent.errors.values())}",
        fmt(sent.elapsed, ".2f"),
        fmt(sent.rate),
        fmt(percentile(sent.latencies, 0.50), ".1f", 1000),
        fmt(percentile(sent.latencies, 0.99), ".1f", 1000),
        "n/a" if e2e is None else f"{sent.accepted / e2e:.1f} ({e2e:.2f}s)",
        "n/a" if report.delivered is None else f"{report.delivered} ({report.distinct_delivered} distinct)",
        fmt(report.server_cpu, ".2f"),
        fmt(None if report.server_cpu is None or not sent.accepted else report.server_cpu / sent.accepted,
            ".2f", 1000),
        fmt(sent.client_cpu, ".2f"),
        "n/a" if report.exit_status is None else str(report.exit_status),
    ]


LABELS = [
    "accepted", "refused / errors", "accept phase (s)", "accepted msgs/s", "accept latency p50 (ms)",
    "accept latency p99 (ms)", "end-to-end msgs/s", "delivered to sink", "server CPU in run (s)",
    "server CPU per msg (ms)", "client CPU in run (s)", "server exit status",
]


def print_table(title: str, reports: list[RunReport], count: int, connections: int, size: int, load: float,
                setting: str) -> None:
    """The heading (what ran, on what machine) and one column of figures per run."""
    print(f"\n{title}: {count} messages of ~{size / 1024:.1f} KB over {connections} "
          f"SMTP sessions, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average before the run {load:.2f}, after {os.getloadavg()[0]:.2f}; {setting}\n")
    columns = [rows(report, count) for report in reports]
    print(f"{'':<26}" + "".join(f"{report.name:>22}" for report in reports))
    for index, label in enumerate(LABELS):
        print(f"{label:<26}" + "".join(f"{column[index]:>22}" for column in columns))


def print_problems(reports: list[RunReport]) -> None:
    """Each run's refusals and errors by their text, and its notes."""
    for report in reports:
        for text, number in [*report.sent.refusals.items(), *report.sent.errors.items()]:
            print(f"{report.name}: {number} x {text}")
        for note in report.notes:
            print(f"{report.name}: {note}")


def print_report(reports: list[RunReport], count: int, connections: int, size: int, load: float,
                 setting: str, postgres: bool = False) -> None:
    print_table("mentor-relay throughput", reports, count, connections, size, load, setting)
    print(f"\nrelay durability: {DURABILITY_PG if postgres else DURABILITY}")
    print("relay delivery: SMTP to the sink subprocess, 4 connections (default), poll_interval 0.1s")
    print_problems(reports)
    for report in reports:
        for line in report.notes_info:
            print(f"{report.name} log: {line}")
        if report.stages and report.sent.accepted:
            print(f"{report.name} CPU per message by stage (ms):")
            for stage, seconds in report.stages.items():
                print(f"  {stage:<42}{seconds / report.sent.accepted * 1000:>8.2f}")
    bare, relay = reports[0].sent.rate, reports[1].sent.rate
    print(f"relay/bare throughput ratio: {relay / bare if bare else 0.0:.2f}")


# --- entry point ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, help="messages per run (N)")
    parser.add_argument("--connections", type=int, default=20, help="concurrent SMTP sessions (default 20)")
    parser.add_argument("--policy", default="adult-professional",
                        help="a policy of policies/ for the program (default adult-professional; none: no rules)")
    parser.add_argument("--dkim", choices=["rsa", "ed25519", "off"], default="rsa",
                        help="DKIM signing of deliveries (default rsa: RSA-2048)")
    parser.add_argument("--database", help="a PostgreSQL server URL (postgresql://user:pass@host:port/db): the "
                        "relay's store is a new database there, dropped after the run (default: a SQLite file)")
    parser.add_argument("--instances", type=int, default=1,
                        help="copies of `serve` on the one store, the sessions spread over them (default 1)")
    parser.add_argument("--role", choices=["bare", "sink", "dns"], help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--status-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_counts(parser, args, "instances")
    return args


def check_counts(parser: argparse.ArgumentParser, args: argparse.Namespace, other: str) -> None:
    """A run (not a helper's --role) needs --messages N >= 1; --connections and --OTHER must be >= 1 too."""
    if args.role is None and (args.messages is None or args.messages < 1 or args.connections < 1
                              or getattr(args, other) < 1):
        parser.error(f"--messages N (N >= 1) is required; --connections and --{other} must be >= 1")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role is not None:
        asyncio.run(serve_helper(args.role, args.port_file, args.status_file))
        return 0
    count, connections = args.messages, min(args.connections, args.messages)
    timeout = 120.0 + 0.2 * count  # for the accept phase, and again for the sink to catch up
    load = os.getloadavg()[0]  # other work on the machine skews every figure: shown with them
    children: list[Child] = []
    database = create_bench_database(args.database) if args.database else None
    with tempfile.TemporaryDirectory(prefix="mentor-relay-bench-") as temp:
        workdir = Path(temp)
        try:
            with stopped_at_the_end(children):
                setup = prepare_relay(workdir, children, args.policy, args.dkim, count, database)
                messages = build_messages(count, setup.pairs)
                reports = [run_bare(messages, connections, workdir, children, timeout),
                           run_relay(setup, messages, connections, workdir, children, timeout, args.instances)]
        finally:
            if database is not None:
                drop_bench_database(args.database, database)
    setting = f"policy {args.policy}, DKIM {args.dkim if args.dkim != 'rsa' else 'RSA-2048'}"
    print_report(reports, count, connections, sum(len(raw) for raw, _, _ in messages) // count, load, setting,
                 postgres=database is not None)
    return 0 if all(complete(report, count) for report in reports) else 1


def complete(report: RunReport, count: int) -> bool:
    """Every message accepted (and, for the relay, delivered) without errors or notes."""
    delivered = report.delivered is None or report.delivered >= count
    return report.sent.accepted == count and delivered and not report.sent.errors and not report.notes


if __name__ == "__main__":
    sys.exit(main())
