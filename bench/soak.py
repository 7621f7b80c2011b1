"""Soak benchmark: a steady stream of mail for a long time, with SIGTERM restarts; is memory flat, is anything lost?

What it does
  The same throw-away set-up as bench/throughput.py (its helpers are imported from there): a counting SMTP sink,
  the loopback DNS server, a config dir with one program on `--policy` (default adult-professional), DKIM per
  `--dkim` (default rsa), a pair per 30 messages enrolled with the real CLI (the policy's rate rule holds a
  pair's 41st message in a day), and `python -m relay serve` as a subprocess.
  A paced client sends `--rate` messages a second (default 50) for `--duration` seconds (default 1800) over a
  few SMTP sessions. `--restarts` times (default 3), evenly spread, the relay gets SIGTERM (graceful stop:
  transactions under way finish) and is started again on the same store; the client keeps what it could not
  send (refused, or the connection gone) and sends it again once the relay is back, as a real MTA would.

What it prints
  For each run of the relay between restarts: its RSS (relay process; and the whole process tree with the
  worker processes) a few seconds after the start and just before the SIGTERM, with the messages accepted in it.
  At the end: accepted, delivered (distinct outbound Message-IDs at the sink), lost (accepted but never
  delivered), repeated deliveries, and the last line `soak: lost N, RSS start X MB end Y MB`.

Usage: .venv/bin/python bench/soak.py [--duration 1800] [--rate 50] [--restarts 3] [--policy NAME] [--dkim rsa]
Exit status 1 if a message was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (  # the bench's own helpers, next to this file
    START_TIMEOUT,
    Child,
    Mail,
    build_messages,
    prepare_relay,
    read_text,
    relay_cli,
    sink_status,
    wait_until,
)

SESSIONS = 4
WARM_UP = 5.0  # seconds after a start before the "start" RSS is read


def rss_kb(pid: int) -> int | None:
    try:
        found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def tree_rss_kb(pid: int) -> int:
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        total += rss_kb(current) or 0
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in children.read_text().split())
    return total


@dataclass
class Segment:
    """One run of the relay between restarts."""

    index: int
    rss_start: tuple[int, int] | None = None  # (relay process kB, process tree kB)
    rss_end: tuple[int, int] | None = None
    accepted: int = 0


@dataclass
class Soak:
    port: int = 0
    accepted: set[int] = field(default_factory=set)
    retries: int = 0
    segments: list[Segment] = field(default_factory=list)


def start_relay(config: Path, workdir: Path, index: int) -> tuple[Child, int]:
    child = Child("relay", relay_cli(config, "serve"), workdir / f"relay-{index}.log")

    def port() -> int | None:
        found = re.search(r"serving \S+ on 127\.0\.0\.1:(\d+)", read_text(child.log) or "")
        return int(found.group(1)) if found else None

    return child, wait_until(port, [child], START_TIMEOUT, "the relay to listen")


async def sender(soak: Soak, messages: Sequence[Mail], todo: asyncio.Queue[int], stop_at: float) -> None:
    """Take message numbers from `todo` and send them; what fails goes back on the queue."""
    client: aiosmtplib.SMTP | None = None
    while time.monotonic() < stop_at:
        try:
            index = await asyncio.wait_for(todo.get(), 0.5)
        except TimeoutError:
            continue
        try:
            if client is None:
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=soak.port, timeout=30, start_tls=False)
                await client.connect()
            raw, mail_from, rcpt = messages[index]
            await client.sendmail(mail_from, [rcpt], raw)
            soak.accepted.add(index)
            soak.segments[-1].accepted += 1
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            soak.retries += 1
            todo.put_nowait(index)
            if client is not None:
                client.close()
            client = None
            await asyncio.sleep(0.2)
    if client is not None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()


async def pace(todo: asyncio.Queue[int], count: int, rate: float) -> None:
    began = time.monotonic()
    for index in range(count):
        delay = began + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        todo.put_nowait(index)


async def run(args: argparse.Namespace, workdir: Path, children: list[Child]) -> int:
    count = int(args.duration * args.rate)
    setup = prepare_relay(workdir, children, args.policy, args.dkim, count)
    messages = build_messages(count, setup.pairs)
    soak = Soak()
    relay, soak.port = start_relay(setup.config, workdir, 0)
    children.append(relay)
    soak.segments.append(Segment(0))
    todo: asyncio.Queue[int] = asyncio.Queue()
    began = time.monotonic()
    stop_at = began + args.duration + 120  # the client may catch up for two minutes after the paced part
    pacer = asyncio.create_task(pace(todo, count, args.rate))
    senders = [asyncio.create_task(sender(soak, messages, todo, stop_at))
               for _ in range(SESSIONS)]
    restart_at = [began + args.duration * (k + 1) / (args.restarts + 1) for k in range(args.restarts)]
    segment_started = time.monotonic()
    while not pacer.done() or not todo.empty() or len(soak.accepted) < count:
        if time.monotonic() > stop_at:
            break
        segment = soak.segments[-1]
        if segment.rss_start is None and time.monotonic() - segment_started >= WARM_UP:
            segment.rss_start = (rss_kb(relay.process.pid) or 0, tree_rss_kb(relay.process.pid))
        if restart_at and time.monotonic() >= restart_at[0]:
            restart_at.pop(0)
            segment.rss_end = (rss_kb(relay.process.pid) or 0, tree_rss_kb(relay.process.pid))
            status = await asyncio.to_thread(relay.stop)
            print(f"restart {segment.index + 1}: SIGTERM, exit status {status}", flush=True)
            relay, soak.port = await asyncio.to_thread(start_relay, setup.config, workdir, segment.index + 1)
            children.append(relay)
            soak.segments.append(Segment(segment.index + 1))
            segment_started = time.monotonic()
        await asyncio.sleep(0.2)
    soak.segments[-1].rss_end = (rss_kb(relay.process.pid) or 0, tree_rss_kb(relay.process.pid))
    for task in [pacer, *senders]:
        task.cancel()
    await asyncio.gather(pacer, *senders, return_exceptions=True)

    accepted = len(soak.accepted)
    with contextlib.suppress(RuntimeError):
        wait_until(lambda: sink_status(workdir)["distinct"] >= accepted, [relay, setup.sink], 120,
                   "the sink to receive every accepted message")
    time.sleep(1.0)
    status = sink_status(workdir)
    relay.stop()
    elapsed = time.monotonic() - began
    print(f"\nsoak: {args.duration:.0f}s at {args.rate:g} msg/s, {args.restarts} SIGTERM restarts, policy "
          f"{args.policy}, DKIM {args.dkim}; {elapsed:.0f}s in all; load average now {os.getloadavg()[0]:.2f}")
    for segment in soak.segments:
        start = segment.rss_start or (0, 0)
        end = segment.rss_end or (0, 0)
        print(f"  run {segment.index}: {segment.accepted} accepted; RSS relay {start[0] / 1024:.0f} -> "
              f"{end[0] / 1024:.0f} MB, with workers {start[1] / 1024:.0f} -> {end[1] / 1024:.0f} MB")
    lost = max(0, accepted - int(status["distinct"]))
    print(f"messages: {count} to send, {accepted} accepted, {soak.retries} sends retried by the client, "
          f"{status['distinct']} delivered (distinct), {status['count'] - status['distinct']} repeated deliveries")
    first = soak.segments[0].rss_start or (0, 0)
    last = soak.segments[-1].rss_end or (0, 0)
    print(f"soak: lost {lost}, RSS start {first[0] / 1024:.0f} MB end {last[0] / 1024:.0f} MB")
    return 1 if lost or accepted < count else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of paced sending (default 1800)")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second (default 50)")
    parser.add_argument("--restarts", type=int, default=3, help="SIGTERM restarts, evenly spread (default 3)")
    parser.add_argument("--policy", default="adult-professional")
    parser.add_argument("--dkim", choices=["rsa", "ed25519", "off"], default="rsa")
    args = parser.parse_args(argv)
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="mentor-relay-soak-") as temp:
        try:
            return asyncio.run(run(args, Path(temp), children))
        finally:
            for child in children:
                child.stop()


if __name__ == "__main__":
    sys.exit(main())
