"""Stall benchmark: do large or hostile messages stall other sessions?

A throw-away relay (`python -m relay serve` as a subprocess, the shipped adult-professional policy with
sender_auth off so that no DNS is asked, maildir delivery, SQLite with FULL durability, the default
`workers: auto`) is measured twice in one run:
  1. Baseline: one connection sends NOOP every 50 ms while small (~1 KB) messages are sent from other
     connections, one every 100 ms, for the duration of the load.
  2. Load: the same, while a 200 KB folded-header message, a 1 MB text message and three 10 MB
     messages (base64 attachments) are taken in concurrently on their own connections.
Printed: max and p95 NOOP reply latency, p50/p95 accept latency of the small messages, what the large
messages got (code and seconds), the relay's peak RSS (VmHWM: the event-loop process, then each process
under it, and their sum, which bounds the whole relay's peak from above), the whole relay's memory as it was
(the PSS of all its processes, summed, sampled every 20 ms during the load: idle and peak), and ratio lines
load/baseline.
Goals (issue 13): max NOOP <= 100 ms, small p95 <= 250 ms.

Usage: .venv/bin/python bench/stall.py [--small-every 0.1] [--settle 2] [--large 3] [--large-mb 10]
(issue 13's large-mail case: --large 10 --large-mb 20)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path

import aiosmtplib
import yaml

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "relay.test"
MENTOR = {"email": "jose.mueller@uni.example.net", "name": "José Müller", "handle": "Oak"}
MENTEE = {"email": "jane.doe@mail.example.org", "name": "Jane Doe", "handle": "Maple"}
START_TIMEOUT = 60.0
NOOP_EVERY = 0.05
SAMPLE_EVERY = 0.02  # seconds between two samples of the whole relay's RSS during the load


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_config(root: Path, port: int) -> Path:
    (root / "policies").mkdir()
    (root / "programs").mkdir()
    policy = yaml.safe_load((REPO / "policies" / "adult-professional.yaml").read_text())
    policy.update(name="bench", sender_auth="off")
    (root / "policies" / "bench.yaml").write_text(yaml.safe_dump(policy))
    (root / "programs" / "bench.yaml").write_text(yaml.safe_dump({
        "id": "bench", "name": "Bench", "goals": ["measure"], "coordinator": "coordinator@school.example",
        "policy": "bench", "region": "US", "timezone": "UTC", "welcome": False}))
    config = {
        "domain": DOMAIN, "database": f"sqlite:///{root / 'relay.db'}",
        "smtp": {"host": "127.0.0.1", "port": port, "max_message_size": 40 * 1024 * 1024,
                 "max_connections": 1000, "max_connections_per_ip": 0,
                 "connections_per_ip_per_minute": 0},
        "console": {"enabled": False},
        "delivery": {"transport": "maildir", "maildir": str(root / "maildir")},
        "programs_dir": "programs", "policies_dir": "policies",
    }
    path = root / "relay.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(config: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "relay", "--config", str(config), *args],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"mentor-relay {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def message(subject: str, body: str, to: str, extra: str = "") -> bytes:
    return (f"From: {MENTEE['name']} <{MENTEE['email']}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {formatdate()}\r\nMessage-ID: <{time.monotonic_ns()}@mail.example.org>\r\n{extra}"
            f"\r\n{body}").encode()


def large_messages(to: str, count: int = 3, megabytes: int = 10) -> list[tuple[str, bytes]]:
    folded = "\r\n ".join(["a folded subject line of words"] * 6_800)  # ~200 KB
    text = "A long letter about the week, the project and the plans for the next meetings.\r\n" * 12_500  # 1 MB
    blob = base64.encodebytes(os.urandom(megabytes * 750_000)).decode().replace("\n", "\r\n")  # ~N MB encoded
    attachment = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n", "--b\r\n"
                  "Content-Type: text/plain\r\n\r\nThe draft is attached.\r\n--b\r\nContent-Type: "
                  "application/octet-stream\r\nContent-Disposition: attachment; filename=draft.bin\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n" + blob + "--b--\r\n")
    return [("200 KB folded header", message(folded, "hello\r\n", to)),
            ("1 MB text", message("Long letter", text, to))] + [
        (f"{megabytes} MB attachment #{i}", message(f"Draft {i}", attachment[1], to, attachment[0]))
        for i in range(count)]


async def send(port: int, raw: bytes, to: str) -> tuple[int, float]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=300)
    await client.connect()
    start = time.perf_counter()
    try:
        await client.sendmail(MENTEE["email"], [to], raw)
        code = 250
    except aiosmtplib.SMTPResponseException as exc:
        code = exc.code
    elapsed = time.perf_counter() - start
    await client.quit()
    return code, elapsed


def wire(raw: bytes) -> bytes:
    """The DATA payload of `raw` (CRLF lines, dot-stuffed, lone dot), prepared before the measured phase."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    return (b"." + stuffed if stuffed.startswith(b".") else stuffed) + b".\r\n"


async def send_wire(port: int, payload: bytes, to: str) -> tuple[int, float]:
    """Send a prepared DATA payload with plain stream writes: aiosmtplib would normalise 20 MB on this
    process's event loop (~0.5 s each), stalling the bench's own NOOP prober and small senders."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await asyncio.wait_for(reader.readline(), 300)
            if len(line) < 4 or line[3:4] != b"-":
                return line

    try:
        await reply()
        for command in (b"EHLO bench.test", f"MAIL FROM:<{MENTEE['email']}>".encode(), f"RCPT TO:<{to}>".encode()):
            writer.write(command + b"\r\n")
            await reply()
        start = time.perf_counter()
        writer.write(b"DATA\r\n")
        await reply()
        writer.write(payload)
        code = int((await reply())[:3])
        elapsed = time.perf_counter() - start
        writer.write(b"QUIT\r\n")
        await reply()
    finally:
        writer.close()
    return code, elapsed


async def prober(port: int, stop: asyncio.Event) -> list[float]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=300)
    await client.connect()
    latencies = []
    while not stop.is_set():
        start = time.perf_counter()
        await client.noop()
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(NOOP_EVERY)
    await client.quit()
    return latencies


async def small_load(port: int, to: str, stop: asyncio.Event, every: float) -> list[float]:
    tasks = []
    while not stop.is_set():
        tasks.append(asyncio.create_task(send(port, message("Short note", "See you on Tuesday.\r\n", to), to)))
        await asyncio.sleep(every)
    results = await asyncio.gather(*tasks)
    return [elapsed for code, elapsed in results if code == 250]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (the forkserver and the worker processes it forked), from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 64:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        todo += [int(child) for child in children]
    return found


def tree_kb(pid: int, field: str, read: Callable[[int, str], int] = rss_kb) -> list[int]:
    """`field` of `pid` and of each process under it (0 for one that has ended meanwhile), read by `read`."""
    values = []
    for each in [pid, *descendants(pid)]:
        try:
            values.append(read(each, field))
        except OSError:
            values.append(0)
    return values


def rollup_kb(pid: int, field: str) -> int:
    """`field` of /proc/PID/smaps_rollup: "Pss" is the proportional set size, its private pages and each page it
    shares with N processes counted 1/N (the workers share the forkserver's pages; summed RSS counts them twice)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def sample_tree_pss(pid: int, stop: threading.Event, samples: list[int]) -> None:
    """The whole relay's memory (the PSS of the event-loop process and of every process under it, summed), every
    SAMPLE_EVERY seconds until `stop`: its largest sample is the whole relay's peak as it was (to within the
    sampling), not an upper bound."""
    while not stop.wait(SAMPLE_EVERY):
        samples.append(sum(tree_kb(pid, "Pss", rollup_kb)))


def loop_cpu(pid: int) -> float:
    """CPU seconds of the relay's main thread (the event loop; tid == pid), user + system."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def phase(port: int, to: str, large: list[tuple[str, bytes]] | None, duration: float,
                every: float) -> dict[str, object]:
    stop = asyncio.Event()
    noop = asyncio.create_task(prober(port, stop))
    small = asyncio.create_task(small_load(port, to, stop, every))
    outcomes: list[tuple[str, int, float]] = []
    if large:
        results = await asyncio.gather(*(send_wire(port, raw, to) for _, raw in large))
        outcomes = [(name, code, elapsed) for (name, _), (code, elapsed) in zip(large, results, strict=True)]
    else:
        await asyncio.sleep(duration)
    stop.set()
    return {"noop": await noop, "small": await small, "large": outcomes}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-every", type=float, default=0.1, help="seconds between two small messages")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of quiet before measuring")
    parser.add_argument("--large", type=int, default=3, help="how many large attachment messages at once")
    parser.add_argument("--large-mb", type=int, default=10, help="size of each large message in MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-stall-") as tmp:
        root = Path(tmp)
        port = free_port()
        config = make_config(root, port)
        pair = json.loads(cli(config, "pair", "create", "--program", "bench", "--json",
                              "--mentor-email", MENTOR["email"], "--mentor-name", MENTOR["name"],
                              "--mentor-handle", MENTOR["handle"], "--mentee-email", MENTEE["email"],
                              "--mentee-name", MENTEE["name"], "--mentee-handle", MENTEE["handle"]))
        to = pair["mentor_alias"]
        large = [(name, wire(raw)) for name, raw in large_messages(to, args.large, args.large_mb)]
        log = open(root / "serve.log", "w")  # noqa: SIM115 - closed below
        server = subprocess.Popen([sys.executable, "-m", "relay", "--config", str(config), "serve"],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while "ready on" not in (root / "serve.log").read_text():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("serve did not start:\n" + (root / "serve.log").read_text())
                await asyncio.sleep(0.05)
            await asyncio.sleep(args.settle)
            idle = rss_kb(server.pid, "VmRSS")
            tree_idle = sum(tree_kb(server.pid, "Pss", rollup_kb))
            cpu_start = loop_cpu(server.pid)
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_tree_pss, args=(server.pid, sampling, tree_samples := []))
            sampler.start()
            try:
                loaded = await phase(port, to, large, 0, args.small_every)
            finally:
                sampling.set()
                sampler.join()
            cpu_loaded = loop_cpu(server.pid) - cpu_start
            await asyncio.sleep(args.settle)
            cpu_start = loop_cpu(server.pid)
            baseline = await phase(port, to, None, max(3.0, 0.5 * max(e for _, _, e in loaded["large"])),  # type: ignore[misc]
                                   args.small_every)
            cpu_baseline = loop_cpu(server.pid) - cpu_start
            peak = rss_kb(server.pid, "VmHWM")
            peaks = tree_kb(server.pid, "VmHWM")[1:]
            await asyncio.sleep(args.settle)
            after = rss_kb(server.pid, "VmRSS")
            tree_after = sum(tree_kb(server.pid, "VmRSS"))
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    b_noop, l_noop = baseline["noop"], loaded["noop"]
    b_small, l_small = baseline["small"], loaded["small"]
    assert isinstance(b_noop, list) and isinstance(l_noop, list) and isinstance(b_small, list)
    assert isinstance(l_small, list)
    for name, code, elapsed in loaded["large"]:  # type: ignore[attr-defined]
        print(f"large: {name:24s} -> {code} in {elapsed:.2f} s")
    print(f"baseline: NOOP max {max(b_noop) * 1000:.1f} ms p95 {pct(b_noop, .95) * 1000:.1f} ms; "
          f"small accept p50 {pct(b_small, .5) * 1000:.1f} ms p95 {pct(b_small, .95) * 1000:.1f} ms (n={len(b_small)})")
    print(f"load:     NOOP max {max(l_noop) * 1000:.1f} ms p95 {pct(l_noop, .95) * 1000:.1f} ms; "
          f"small accept p50 {pct(l_small, .5) * 1000:.1f} ms p95 {pct(l_small, .95) * 1000:.1f} ms (n={len(l_small)})")
    print(f"relay process RSS: idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB, after {after / 1024:.0f} MB "
          "(the event-loop process; workers are separate processes)")
    print(f"processes under it, peak RSS: {', '.join(f'{kb / 1024:.0f}' for kb in peaks)} MB; "
          f"sum of every peak {(peak + sum(peaks)) / 1024:.0f} MB (an upper bound of the whole relay's peak); "
          f"whole relay after {tree_after / 1024:.0f} MB")
    print(f"whole relay PSS sampled every {SAMPLE_EVERY * 1000:.0f} ms during the load: idle "
          f"{tree_idle / 1024:.0f} MB, peak {max(tree_samples, default=0) / 1024:.0f} MB ({len(tree_samples)} samples)")
    print(f"event-loop thread CPU: load {cpu_loaded:.2f} s, baseline {cpu_baseline:.2f} s "
          f"(load {len(loaded['large'])} large + {len(l_small)} small, baseline {len(b_small)} small)")  # type: ignore[arg-type]
    print(f"load/baseline NOOP max ratio: {max(l_noop) / max(b_noop):.2f}")
    print(f"load/baseline small p95 accept latency ratio: {pct(l_small, .95) / pct(b_small, .95):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
