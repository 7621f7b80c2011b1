"""Floor benchmark: the throughput ratio that a relay doing only the unavoidable work reaches on this machine.

bench/throughput.py compares mentor-relay with a bare aiosmtpd server that stores nothing. This bench asks
what part of that gap no design can close with the libraries the project uses. It runs, in the same way and
with the same messages, a minimal forwarder: an aiosmtpd server whose DATA handler does what every relay of
this kind must do to a message, and nothing else:
  - parse it with the stdlib `email` package (policy.default), as the relay does;
  - replace From, To and Message-ID (the sender's address and id must not pass);
  - serialise it;
  - sign it with the relay's own DKIM signer (relay/dkim/signer.py; RSA-2048 by default);
  - hand it to the counting sink over one of a few open aiosmtplib sessions, and answer 250 once the sink
    has answered.
It keeps no store at all (so no durability and no archive), checks no sender, runs no rules, and rewrites no
body. It runs as one process per CPU, all listening on one port (SO_REUSEPORT), so it uses every core with
no hand-off between processes. Its ratio against bare aiosmtpd bounds, on this machine, any relay that
parses, signs and forwards each message with these libraries, whatever else it does and however it is built.

Printed: the bare server's and the forwarder's accepted messages/s, the forwarder's CPU per message (its
processes and the sink's), and, last, `floor/bare throughput ratio: X.XX`.

Usage: .venv/bin/python bench/floor.py --messages N [--connections 20] [--dkim rsa|ed25519|off] [--processes P]
Exit status 1 if a message was refused, lost or not delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from email import policy
from email.parser import BytesParser
from email.utils import make_msgid
from pathlib import Path
from typing import Literal

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import throughput as tp

from relay.dkim import keys
from relay.dkim.signer import Signer

SINK_SESSIONS = 4  # open sessions from each forwarder process to the sink (the relay's default)


class Forwarder:
    """The DATA handler of the minimal forwarder (see the module's docstring)."""

    def __init__(self, sink_port: int, signer: Signer | None) -> None:
        self._sink_port = sink_port
        self._signer = signer
        self._parser = BytesParser(policy=policy.default)
        self._sessions: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(SINK_SESSIONS):
            self._sessions.put_nowait(await tp.open_session(self._sink_port))

    async def close(self) -> None:
        while not self._sessions.empty():
            await tp.close_session(self._sessions.get_nowait())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = self._parser.parsebytes(envelope.original_content or b"")
        message.replace_header("From", f"Maple <maple@{tp.DOMAIN}>")
        message.replace_header("To", f"Oak <oak@{tp.DOMAIN}>")
        message.replace_header("Message-ID", make_msgid(domain=tp.DOMAIN))
        raw = message.as_bytes(policy=policy.SMTP)
        if self._signer is not None:
            raw = self._signer.sign(raw)
        client = await self._sessions.get()
        try:
            await client.sendmail(f"bounce@{tp.DOMAIN}", ["oak@sink.test"], raw)
        finally:
            self._sessions.put_nowait(client)
        return "250 2.0.0 forwarded"


async def serve_forwarder(port: int, sink_port: int, dkim: str, ready_file: Path) -> None:
    """One forwarder process: listen on `port` beside the others (SO_REUSEPORT) until SIGTERM."""
    algorithm: Literal["rsa", "ed25519"] = "ed25519" if dkim == "ed25519" else "rsa"
    signer = None if dkim == "off" else Signer(tp.DOMAIN, "bench", keys.generate(algorithm))
    handler = Forwarder(sink_port, signer)
    await handler.open()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="floor.bench", decode_data=False, enable_SMTPUTF8=True),
        "127.0.0.1", port, reuse_port=True,
    )
    tp.write_atomically(ready_file, "ready")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), tp.HELPER_MAX_SECONDS)
    server.close()
    await handler.close()


def reserved_port() -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket: it holds a free port for the forwarders to share."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


def start_forwarders(count: int, port: int, sink_port: int, dkim: str, workdir: Path,
                     children: list[tp.Child]) -> list[tp.Child]:
    started = []
    for index in range(count):
        ready = workdir / f"floor-{index}.ready"
        argv = [sys.executable, str(Path(__file__).resolve()), "--role", "forwarder", "--port", str(port),
                "--sink-port", str(sink_port), "--dkim", dkim, "--ready-file", str(ready)]
        child = tp.Child(f"forwarder {index}", argv, workdir / f"floor-{index}.log")
        children.append(child)
        started.append(child)
        tp.wait_until(lambda ready=ready: tp.read_text(ready), [child], tp.START_TIMEOUT,
                      f"forwarder {index} to listen")
    return started


def cpu_of(children: Sequence[tp.Child]) -> float | None:
    figures = [child.cpu_seconds() for child in children]
    return None if any(figure is None for figure in figures) else sum(f for f in figures if f is not None)


def run_floor(messages: list[tp.Mail], connections: int, processes: int, dkim: str, workdir: Path,
              children: list[tp.Child], timeout: float) -> tuple[tp.RunReport, float | None]:
    """The forwarders' run; also the sink's CPU in it (the forwarder's own work, done by another process)."""
    sink, sink_port = tp.start_helper("sink", workdir, children)
    holder = reserved_port()
    try:
        port = holder.getsockname()[1]
        forwarders = start_forwarders(processes, port, sink_port, dkim, workdir, children)
        before, sink_before = cpu_of(forwarders), sink.cpu_seconds()
        sent = asyncio.run(tp.drive([port], messages, connections, timeout))
        after, sink_cpu = cpu_of(forwarders), tp.cpu_delta(sink, sink_before)
    finally:
        holder.close()
    report = tp.RunReport(f"floor x{processes}", sent,
                          server_cpu=None if before is None or after is None else after - before)
    if sent.accepted:
        try:
            status = tp.wait_until(lambda: (s := tp.sink_status(workdir))["count"] >= sent.accepted and s,
                                   [*forwarders, sink], timeout, f"the sink to receive {sent.accepted} messages")
            report.end_to_end = status["last_at"] - sent.started
        except RuntimeError as exc:
            report.notes.append(str(exc).splitlines()[0])
    status = tp.sink_status(workdir)
    report.delivered, report.distinct_delivered = status["count"], status["distinct"]
    codes = [child.stop() for child in forwarders]
    report.exit_status = next((code for code in codes if code != 0), 0)  # the first that failed, if any
    return report, sink_cpu


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, help="messages per run (N)")
    parser.add_argument("--connections", type=int, default=20, help="concurrent SMTP sessions (default 20)")
    parser.add_argument("--dkim", choices=["rsa", "ed25519", "off"], default="rsa",
                        help="DKIM signing by the forwarder (default rsa: RSA-2048)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="forwarder processes on the one port (default: one per CPU)")
    parser.add_argument("--role", choices=["forwarder"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tp.check_counts(parser, args, "processes")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "forwarder":
        asyncio.run(serve_forwarder(args.port, args.sink_port, args.dkim, args.ready_file))
        return 0
    count, connections = args.messages, min(args.connections, args.messages)
    timeout = 120.0 + 0.2 * count
    load = os.getloadavg()[0]
    pairs = [tp.Pair("jane.doe@mail.example.org", "Jane Doe", f"oak.{index}@{tp.DOMAIN}") for index in range(20)]
    messages = tp.build_messages(count, pairs)
    children: list[tp.Child] = []
    with tempfile.TemporaryDirectory(prefix="mentor-relay-floor-") as temp:
        workdir = Path(temp)
        with tp.stopped_at_the_end(children):
            bare = tp.run_bare(messages, connections, workdir, children, timeout)
            floor, sink_cpu = run_floor(messages, connections, args.processes, args.dkim, workdir, children,
                                        timeout)
    size = sum(len(raw) for raw, _, _ in messages) // count
    tp.print_table("mentor-relay floor", [bare, floor], count, connections, size, load,
                   f"DKIM {args.dkim if args.dkim != 'rsa' else 'RSA-2048'}")
    tp.print_problems([bare, floor])
    if floor.sent.accepted and sink_cpu is not None and floor.server_cpu is not None:
        print(f"CPU per message (ms): forwarders {floor.server_cpu / floor.sent.accepted * 1000:.2f}, "
              f"sink {sink_cpu / floor.sent.accepted * 1000:.2f}, "
              f"client {floor.sent.client_cpu / floor.sent.accepted * 1000:.2f}")
    rate = bare.sent.rate
    print(f"floor/bare throughput ratio: {floor.sent.rate / rate if rate else 0.0:.2f}")
    return 0 if all(tp.complete(report, count) for report in (bare, floor)) else 1


if __name__ == "__main__":
    sys.exit(main())
