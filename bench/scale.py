"""Scale benchmark: a year of a large program in the store, and what stays fast on it (issue 14).

    .venv/bin/python bench/scale.py --pairs N --messages M [--accept 2000] [--sweep-timeout 600]

1. Builds a store (a SQLite file, as the tests' Layout writes it) through the project's store code:
   N pairs (relay.store.pairs.insert_pair and a chained `pair_created` event each; no welcome mail),
   then M messages of ~2 KB written in rounds (every pair once per round, the writer alternating, the last
   round from the mentees) over the year before the build's clock, in batches of 256 through
   relay.store.messages.store_accepted_many — the rows and chain of real intake: the message, its two
   events, its thread ids, its outbound copy (the anonymised headers, the same body) — then marked sent
   with relay.store.outbound.mark_sent_many (the `delivered` event). One message in 100 is held instead.
2. Bytes per message: the database's size (SQLite: the file after a WAL checkpoint; PostgreSQL:
   pg_database_size) over M, and over the mean raw size.
3. `archive verify` rate: relay.archive.verify.verify over the whole chain, entries/s.
4. Accept: the store's part of accepting a message — intake's reads (the pair by alias, pair_stats, the
   thread map) and the write through the group committer (relay.store.committer, Merged
   store_accepted_many), from 20 concurrent senders — on the full store, and on an empty store (same
   config, 100 pairs) measured in the same run. SMTP, parsing and anonymising cost the same on both and
   are left out (bench/throughput.py measures them).
5. `report --program stem --json` and `pair list --json` as CLI subprocesses: wall time and peak RSS.
6. Console `/held` and `/pairs` first page: a relay with its console on the full store, a logged-in
   moderator, wall time of five GETs each: the median of the last four, and the first (just started).
7. A nudge sweep 20 days after the last round (every mentee waiting), run as `serve` runs it: in a process
   of its own (relay/nudges/child.py), wall time; stopped after --sweep-timeout seconds. Meanwhile 4
   senders each accept a message every 50 ms (the store's part, as in 4): their latencies (p50, p99, max)
   against the same stream for 10 s before the sweep, which is what the sweep costs intake, and where the
   time of each accept over 100 ms went (reads, waiting to be written, written and answered) and how long the
   machine stalled for a CPU or the disk meanwhile (Linux /proc/pressure). Like `serve`
   after its start (relay/warmup.py), the bench freezes its heap before (--no-freeze: not).
   --sweep-in-process runs relay.nudges.sweep.run on the bench's own event loop instead (as before
   issue 14's child process; as in-process test relays still do). Then, the stream stopped, one more sweep
   an hour later, as `serve` runs one every hour: everything due was sent by the first, but the rules still
   look at every pair where something may be due.

The last line is `full/empty accept ratio: X.XX` (messages/s on the full store over the empty one).
The store stays in the printed directory with --keep; `--reuse DIR` measures a kept store again instead of
building one (--pairs and --messages are then read from it), and `--only report,pairs` runs some of the
measurements (bytes, verify, accept, report, pairs, console, sweep). Accept and the sweep write into the
store, so a kept store that they measured is no longer the one that was built: `--reuse DIR --copy` measures
a fresh copy of it instead (removed after), so that one build can be measured again and again, before and
after a change. `--only build` builds the store, keeps it and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # appended: a PYTHONPATH naming another checkout's relay/ wins (baselines)

import yaml  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from relay import ids, warmup  # noqa: E402
from relay.archive.verify import verify  # noqa: E402
from relay.clock import FixedClock  # noqa: E402
from relay.config import Settings, load_settings  # noqa: E402
from relay.nudges import sweep as nudge_sweep  # noqa: E402
from relay.nudges.child import ChildSweep  # noqa: E402
from relay.store import checkpoints  # noqa: E402
from relay.store import events as event_store  # noqa: E402
from relay.store import outbound as queue  # noqa: E402
from relay.store.committer import Committer, Merged  # noqa: E402
from relay.store.database import create_engine, migrate, transaction  # noqa: E402
from relay.store.messages import (  # noqa: E402
    Accepted,
    HoldEntry,
    OutboundEntry,
    group_thread_maps,
    pair_stats,
    store_accepted_many,
)
from relay.store.pairs import find_by_alias, insert_pair  # noqa: E402
from relay.store.schema import members, messages, outbound  # noqa: E402
from tests.consolekit import add_moderator, prepare, serving, session  # noqa: E402
from tests.support import DOMAIN, Layout, free_port  # noqa: E402

BATCH = 256
PAIR_BATCH = 1000
MEASURES = ("bytes", "verify", "accept", "report", "pairs", "console", "sweep")
HELD_EVERY = 100
WINDOW = timedelta(days=1)
END = datetime(2026, 6, 30, 12, tzinfo=UTC)  # the build's clock: the last round is just before
PARAGRAPH = (
    "Thank you for your last email and for the links about civil engineering programs. I read the "
    "article about bridge design twice, and I would like to ask you how you chose your first internship, "
    "and whether the summer school you mentioned takes students who have not finished the calculus course. "
)


@dataclass
class Member:
    id: int
    role: str
    email: str
    alias: str
    handle: str


@dataclass
class PairInfo:
    id: int
    mentor: Member
    mentee: Member


def raw_message(sender: Member, to: Member, number: int, when: datetime, refs: str | None) -> bytes:
    headers = [
        f"From: {sender.handle} Person <{sender.email}>", f"To: <{to.alias}@{DOMAIN}>",
        f"Subject: week {number % 52} question {number}", f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        f"Message-ID: <m{number}.{sender.id}@{sender.email.rpartition('@')[2]}>", "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: 7bit",
    ]
    if refs:
        headers += [f"In-Reply-To: {refs}", f"References: {refs}"]
    body = f"Hello {to.handle},\r\n\r\n" + (PARAGRAPH + f"(message {number})\r\n\r\n") * 5 + f"{sender.handle}\r\n"
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def delivered_copy(raw: bytes, sender: Member, to: Member, out_id: str) -> bytes:
    """The copy the recipient gets: identity headers rewritten (as relay/anonymize does), body as sent."""
    head, _, body = raw.partition(b"\r\n\r\n")
    kept = [line for line in head.split(b"\r\n")
            if not line.startswith((b"From:", b"To:", b"Message-ID:", b"In-Reply-To:", b"References:"))]
    kept += [f"From: {sender.handle} <{sender.alias}@{DOMAIN}>".encode(), f"To: {to.handle}".encode(),
             f"Message-ID: {out_id}".encode()]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def accepted_item(pair: PairInfo, sender: Member, to: Member, number: int, when: datetime,
                  refs: str | None, hold: bool) -> Accepted:
    raw = raw_message(sender, to, number, when, refs)
    original = f"<m{number}.{sender.id}@{sender.email.rpartition('@')[2]}>"
    out_id = f"<{ids.queue_id()}@{DOMAIN}>"
    copy = None if hold else OutboundEntry(rcpt=to.email, out_message_id=out_id,
                                            raw=delivered_copy(raw, sender, to, out_id), recipient_id=to.id)
    return Accepted(
        id=ids.queue_id(), pair_id=pair.id, sender_id=sender.id, sender_role=sender.role, recipient_id=to.id,
        envelope_from=sender.email, remote_addr="127.0.0.1", original_message_id=original,
        body_hash=f"{number:064x}", subject=f"week {number % 52} question {number}", raw=raw,
        decision="hold" if hold else "deliver",
        reasons=[{"rule": "secrecy", "kind": "keyword", "match": "secret", "action": "hold"}] if hold else [],
        received_at=when, outbound=copy, duplicate_window=timedelta(days=1), domain=DOMAIN,
        hold=HoldEntry(program_id="stem", policy="adult-professional", reasons=[], release_requires=1,
                       notified=True) if hold else None)


async def enrol(engine: AsyncEngine, count: int, at: datetime) -> list[PairInfo]:
    made: list[int] = []
    for start in range(0, count, PAIR_BATCH):
        async with transaction(engine) as connection:
            for k in range(start, min(count, start + PAIR_BATCH)):
                people = {
                    "mentor": {"email": f"mentor{k}@uni.example.net", "name": f"Zebedee Quill{k}",
                               "handle": f"Oak{k}", "alias": ids.alias_local_part(f"Oak{k}")},
                    "mentee": {"email": f"mentee{k}@mail.example.org", "name": f"Ysolde Fennel{k}",
                               "handle": f"Maple{k}", "alias": ids.alias_local_part(f"Maple{k}")},
                }
                pair_id = await insert_pair(connection, program_id="stem", policy=None, end_date=None,
                                            created_at=at, people=people)
                await event_store.record(connection, "pair_created", at, actor="cli", pair_id=pair_id,
                                         program="stem", policy=None, handles={"mentor": f"Oak{k}",
                                                                               "mentee": f"Maple{k}"})
                made.append(pair_id)
    found: dict[int, dict[str, Member]] = {}
    async with engine.connect() as connection:
        for row in (await connection.execute(select(members.c.id, members.c.pair_id, members.c.role,
                                                    members.c.email, members.c.alias, members.c.handle))).all():
            found.setdefault(row.pair_id, {})[row.role] = Member(row.id, row.role, row.email, row.alias, row.handle)
    return [PairInfo(p, found[p]["mentor"], found[p]["mentee"]) for p in made]


async def fill(engine: AsyncEngine, pairs: list[PairInfo], count: int) -> tuple[int, datetime]:
    """Write `count` messages in rounds; returns the raw bytes written and the last message's time."""
    rounds = max(1, -(-count // len(pairs)))
    span = timedelta(days=365) - WINDOW
    total_raw, number, last = 0, 0, END - span
    batch: list[Accepted] = []
    previous: dict[int, str] = {}  # pair -> the last message id its members know

    async def flush() -> None:
        async with transaction(engine) as connection:
            await store_accepted_many(connection, batch)
            ids_ = [item.id for item in batch if item.outbound is not None]
            entries = (await connection.execute(select(outbound).where(outbound.c.message_id.in_(ids_)))).all()
            await queue.mark_sent_many(connection, [(e, e.created_at + timedelta(seconds=5), "250 ok")
                                                    for e in entries])
        batch.clear()

    for r in range(rounds):
        base = END - WINDOW - span * (rounds - 1 - r) / max(1, rounds - 1) if rounds > 1 else END - WINDOW
        mentee_writes = (rounds - 1 - r) % 2 == 0  # the last round: the mentees
        for index, pair in enumerate(pairs):
            if number >= count:
                break
            when = base + WINDOW * (index / len(pairs))
            sender, to = (pair.mentee, pair.mentor) if mentee_writes else (pair.mentor, pair.mentee)
            item = accepted_item(pair, sender, to, number, when, previous.get(pair.id),
                                 hold=number % HELD_EVERY == HELD_EVERY - 1)
            previous[pair.id] = item.original_message_id or ""
            total_raw += len(item.raw)
            last = max(last, when)
            batch.append(item)
            number += 1
            if len(batch) >= BATCH:
                await flush()
    if batch:
        await flush()
    return total_raw, last


async def store_bytes(engine: AsyncEngine, path: Path | None) -> int:
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int((await connection.execute(text("SELECT pg_database_size(current_database())"))).scalar_one())
        await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path is not None
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def table_bytes(engine: AsyncEngine) -> list[tuple[str, int]]:
    """Bytes of each table and index (SQLite's dbstat virtual table), largest first; [] without dbstat."""
    try:
        async with engine.connect() as connection:
            found: list[Any] = list((await connection.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")).all())
    except Exception:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
        return []
    return [(str(row[0]), int(row[1])) for row in found[:12]]


SLOW = 0.1  # seconds: an accept slower than this is "over 100 ms", and where its time went is kept


@dataclass
class SlowAccept:
    """Where the time of one accept over SLOW went (seconds)."""

    at: float  # when it began, in seconds after the stream began
    reads: float  # the alias, pair_stats and thread-map reads
    waited: float  # from handing the write over until it began in the writer's thread: the committer's queue, the
    #                writers' turn (a sweep transaction under way), SQLite's lock
    written: float  # from then until the answer: the statements, the commit and its fsync, the hop back
    stalls: dict[str, float] | None  # the machine's stall time during it (seconds, by kind: pressure_totals)


def pressure_totals() -> dict[str, float] | None:
    """The machine's stall time so far (Linux pressure stall information, seconds): "cpu" (some task waited for
    a CPU), "io" (some task waited for the disk) and "io full" (every task that could run waited for it); None
    where /proc/pressure is missing."""
    found: dict[str, float] = {}
    try:
        for kind in ("cpu", "io"):
            for line in Path(f"/proc/pressure/{kind}").read_text().splitlines():
                level, _, fields = line.partition(" ")
                total = dict(field.split("=") for field in fields.split())["total"]
                found[kind if level == "some" else f"{kind} {level}"] = int(total) / 1e6
    except (OSError, KeyError, ValueError):
        return None
    return found


def stalled(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    return {kind: after[kind] - before[kind] for kind in ("cpu", "io", "io full") if kind in before and kind in after}


_WRITE_BEGAN: dict[str, float] = {}  # an accepted item's id -> when its batch's write began (perf_counter)


async def timed_store(connection: Any, items: list[Accepted]) -> Any:
    """store_accepted_many, noting when each item's write began (for SlowAccept)."""
    began = time.perf_counter()
    for item in items:
        _WRITE_BEGAN[item.id] = began
    return await store_accepted_many(connection, items)


async def accept_one(engine: AsyncEngine, committer: Committer, pair: PairInfo, number: int, now: datetime,
                     slow: list[SlowAccept] | None = None, origin: float = 0.0) -> float:
    """The store's part of accepting one message from the pair's mentee: seconds from start to committed. An
    accept over SLOW is added to `slow` with where its time went (`origin`: when the stream began)."""
    started, pressure = time.perf_counter(), pressure_totals() if slow is not None else None
    async with engine.connect() as connection:
        found = await find_by_alias(connection, pair.mentor.alias)
        assert found is not None
        await pair_stats(connection, pair.id, now, 41)
        await group_thread_maps(connection, pair.id, pair.mentee.id, [pair.mentor.id],
                                [f"<m{number - 1}.{pair.mentor.id}@uni.example.net>"])
    read = time.perf_counter()
    item = accepted_item(pair, pair.mentee, pair.mentor, number, now, None, hold=False)
    await committer.run(Merged(timed_store, item))
    ended = time.perf_counter()
    began = _WRITE_BEGAN.pop(item.id, read)
    if slow is not None and ended - started > SLOW:
        slow.append(SlowAccept(started - origin, read - started, began - read, ended - began,
                               stalled(pressure, pressure_totals())))
    return ended - started


async def accept_rate(engine: AsyncEngine, pairs: list[PairInfo], count: int, start_number: int,
                      now: datetime, senders: int = 20) -> tuple[float, float]:
    """Messages/s and p99 latency (ms) of the store's part of accepting `count` messages."""
    committer = Committer(engine)
    committer.start()
    latencies: list[float] = []

    async def sender(offset: int) -> None:
        for number in range(start_number + offset, start_number + count, senders):
            latencies.append(await accept_one(engine, committer, pairs[number % len(pairs)], number, now))

    started = time.perf_counter()
    await asyncio.gather(*(sender(k) for k in range(senders)))
    elapsed = time.perf_counter() - started
    await committer.close()
    latencies.sort()
    return count / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000


async def notice_count(engine: AsyncEngine) -> int:
    """The notices in the outbound queue (a sweep's escalations go in one mail per coordinator)."""
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).where(outbound.c.kind == "notice"))).scalar_one())


async def accepts_meanwhile(engine: AsyncEngine, pairs: list[PairInfo], now: datetime, done: asyncio.Event,
                            interval: float = 0.05, senders: int = 4,
                            slow: list[SlowAccept] | None = None) -> list[float]:
    """Accept latencies (seconds) of `senders` senders each accepting one message every `interval` seconds
    until `done` is set: what a sweep running meanwhile costs intake (the accepts over SLOW also in `slow`)."""
    committer = Committer(engine)
    committer.start()
    latencies: list[float] = []
    origin = time.perf_counter()

    async def sender(offset: int) -> None:
        number = 2 * 10**8 + offset
        while not done.is_set():
            latencies.append(await accept_one(engine, committer, pairs[number % len(pairs)], number, now, slow,
                                              origin))
            number += senders
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), interval)

    await asyncio.gather(*(sender(k) for k in range(senders)))
    await committer.close()
    return latencies


def latency_line(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return "no accepts"
    at = lambda share: ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000  # noqa: E731
    slow = sum(1 for latency in ordered if latency > SLOW)
    return (f"{len(ordered):,} accepts, p50 {at(0.5):.0f} ms, p99 {at(0.99):.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms, {slow} over 100 ms")


def slow_lines(slow: list[SlowAccept], whole: dict[str, float] | None, seconds: float, shown: int = 20) -> str:
    """Where the accepts over SLOW spent their time: in all, and the slowest `shown` of them one by one; and the
    machine's stalls (pressure_totals) during them, against its stalls over the whole stream (`whole`, over
    `seconds`)."""
    total = lambda name: sum(getattr(accept, name) for accept in slow) * 1000  # noqa: E731
    lines = [f"accepts over {SLOW * 1000:.0f} ms, where their time went (ms in all): reads {total('reads'):.0f}, "
             f"waiting to be written {total('waited'):.0f}, written and answered {total('written'):.0f}"]
    for accept in sorted(slow, key=lambda a: a.reads + a.waited + a.written, reverse=True)[:shown]:
        stalls = "" if accept.stalls is None else "; stalls " + ", ".join(
            f"{kind} {value * 1000:.0f}" for kind, value in accept.stalls.items()) + " ms"
        lines.append(f"  at {accept.at:7.1f} s: reads {accept.reads * 1000:4.0f}, waiting {accept.waited * 1000:4.0f}, "
                     f"written {accept.written * 1000:4.0f} ms{stalls}")
    measured = [accept for accept in slow if accept.stalls is not None]
    if measured and whole is not None and seconds > 0:
        span = sum(accept.reads + accept.waited + accept.written for accept in measured)
        share = lambda kind, values, over: 100 * sum(v.get(kind, 0.0) for v in values) / over  # noqa: E731
        lines.append("machine stalls (share of the time, Linux PSI): during the slow accepts "
                     + ", ".join(f"{kind} {share(kind, [a.stalls or {} for a in measured], span):.0f}%"
                                 for kind in whole)
                     + "; over the whole stream " + ", ".join(f"{kind} {share(kind, [whole], seconds):.0f}%"
                                                               for kind in whole))
    return "\n".join(lines)


# Runs a command as its child and says its peak RSS: the bench process is large, and a child forked from it
# counts the parent's pages in its ru_maxrss until it execs; forked from this small process it does not.
PEAK_RSS = ("import os, sys\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os.execv(sys.argv[1], sys.argv[1:])\n"
            "_, status, usage = os.wait4(pid, 0)\n"
            "sys.stderr.write(f'\\npeak-rss-kib {usage.ru_maxrss}\\n')\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")


def cli_run(config: Path, *args: str) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and output size (bytes) of one `mentor-relay` command (run from the
    config's directory: `python -m` puts the working directory first on the path)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.run([sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "relay", "--config",
                                  str(config), *args], stdout=out, stderr=err, cwd=config.parent,
                                 env=os.environ.copy(), check=False)
        wall = time.perf_counter() - started
        err.seek(0)
        text = err.read().decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"{args}: exit {process.returncode}: {text[-2000:]}")
        out.seek(0, os.SEEK_END)
        return wall, int(text.rsplit("peak-rss-kib ", 1)[1].split()[0]) / 1024, out.tell()


async def timed(what: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await what()
    return time.perf_counter() - started, result


async def console_pages(layout: Layout, now: datetime, reused: bool,
                        repeat: int = 5) -> dict[str, tuple[float, float, int, int]]:
    """The first page of each list, GET `repeat` times: the first request's time (a relay just started:
    its start-up sweeps run meanwhile, nothing is cached) and the median of the others. The moderator is
    added before the relay starts: on a large store the sweeps a start runs hold the write lock long enough
    for a CLI write to fail (issue 14, item 2). A reused store may have them from an earlier run."""
    found = {}
    with contextlib.suppress(AssertionError) if reused else contextlib.nullcontext():
        await add_moderator(layout, "ana", "stem", admin=True)
    async with serving(layout, clock=FixedClock(now)), session(layout, "ana") as client:
        for path in ("/held", "/pairs"):
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - started)
            found[path] = (times[0], statistics.median(times[1:]), response.status_code, len(response.content))
    return found


def make_layout(root: Path, database: str = "") -> tuple[Layout, Settings]:
    """A layout in `root`: a new store, or the one at `database` (a kept store's URL from its relay.yaml)."""
    layout = Layout(root=root, smtp_port=free_port(), sink_port=free_port(), database=database)
    layout.write()
    prepare(layout)
    return layout, load_settings(layout.config)


async def kept(engine: AsyncEngine) -> tuple[list[PairInfo], int, datetime]:
    """A kept store's pairs (pairs of program stem, with their members), messages, and last message's time."""
    found: dict[int, dict[str, Member]] = {}
    async with engine.connect() as connection:
        for row in (await connection.execute(
                select(members.c.id, members.c.pair_id, members.c.role, members.c.email, members.c.alias,
                       members.c.handle).order_by(members.c.id))).all():
            found.setdefault(row.pair_id, {})[row.role] = Member(row.id, row.role, row.email, row.alias, row.handle)
        count = (await connection.execute(select(func.count()).select_from(messages))).scalar_one()
        last = (await connection.execute(select(func.max(messages.c.received_at)))).scalar_one()
    made = [PairInfo(p, roles["mentor"], roles["mentee"]) for p, roles in sorted(found.items())
            if "mentor" in roles and "mentee" in roles]
    return made, int(count), last


async def one_sweep(options: argparse.Namespace, config: Path, settings: Settings, serving: AsyncEngine,
                    clock: FixedClock) -> tuple[float, int, str]:
    """One nudge sweep at the clock's time, as --sweep-in-process says: (seconds, notices sent, where it ran).
    Raises TimeoutError after --sweep-timeout."""
    if options.sweep_in_process:
        seconds, result = await asyncio.wait_for(timed(lambda: nudge_sweep.run(settings, serving, clock)),
                                                 options.sweep_timeout)
        return seconds, len(result.sent), "on the bench's event loop"
    child = ChildSweep(config, serving)
    seconds, found = await asyncio.wait_for(timed(lambda: child.run(clock.now())), options.sweep_timeout)
    return seconds, found.sent, "in a process of its own, as serve"


async def main(options: argparse.Namespace) -> None:
    only = set(options.only.split(",")) if options.only else set(MEASURES)
    copied: Path | None = None
    if options.reuse and options.copy:
        copied = Path(tempfile.mkdtemp(prefix="relay-scale-copy-"))
        shutil.copytree(Path(options.reuse) / "full", copied / "full")
        os.sync()  # the copy's pages on disk now: else the first commits' fsyncs wait for their writeback
        print(f"a copy of {options.reuse} in {copied}")
    if options.reuse:
        workdir = copied or Path(options.reuse).resolve()
        database = yaml.safe_load((workdir / "full" / "relay.yaml").read_text())["database"]
        layout, settings = make_layout(workdir / "full", database)
        engine = create_engine(settings.database_url)
        await migrate(engine)
        pairs, options.messages, last = await kept(engine)
        options.pairs = len(pairs)
        built = Path(options.reuse) / "built.json"
        recorded = json.loads(built.read_text()) if built.exists() else {}
        # the messages' raw size, as the build recorded it: only while the store holds just those messages
        raw_total = recorded.get("raw_total", 0) if recorded.get("messages") == options.messages else 0
        print(f"store: {options.pairs} pairs, {options.messages} messages; kept in {workdir}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="relay-scale-"))
        print(f"store: {options.pairs} pairs, {options.messages} messages; in {workdir}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        layout, settings = make_layout(workdir / "full")
        engine = create_engine(settings.database_url)
        await migrate(engine)
        started = time.perf_counter()
        pairs = await enrol(engine, options.pairs, END - timedelta(days=366))
        raw_total, last = await fill(engine, pairs, options.messages)
        print(f"built in {time.perf_counter() - started:.1f} s")
    path = Path(settings.database_url.split("///", 1)[1]) if engine.dialect.name == "sqlite" else None
    now = last + timedelta(minutes=1)
    if not options.reuse and (options.keep or options.only == "build"):  # what bench/sweep_profile.py reads
        (workdir / "built.json").write_text(json.dumps({"pairs": options.pairs, "messages": options.messages,
                                                        "last": last.isoformat(), "raw_total": raw_total}))
    if options.only == "build":
        await store_bytes(engine, path)  # checkpointed: the file alone is the store
        await engine.dispose()
        print(f"kept: {workdir} (measure it again: --reuse {workdir} [--copy] --only ...)")
        return

    if "bytes" in only:
        size = await store_bytes(engine, path)
        if raw_total:
            raw_mean = raw_total / options.messages
            print(f"bytes per message: {size / options.messages:,.0f} (store {size / 2**20:,.1f} MiB; mean raw "
                  f"{raw_mean:,.0f} B; {size / raw_total:.2f}x the raw size)")
        else:
            print(f"bytes per message: {size / options.messages:,.0f} (store {size / 2**20:,.1f} MiB)")
        if path is not None:
            print("  by table and index (SQLite dbstat): " + ", ".join(
                f"{name} {pages / options.messages:,.0f}" for name, pages in await table_bytes(engine)))
    if "verify" in only:
        seconds, verdict = await timed(lambda: verify(engine))
        print(f"archive verify: {verdict.entries:,} entries in {seconds:.1f} s = "
              f"{verdict.entries / seconds:,.0f} entries/s (ok: {verdict.ok})")

    rate_full = rate_empty = 0.0
    if "accept" in only:
        _, empty_settings = make_layout(workdir / "empty")
        empty = create_engine(empty_settings.database_url)
        await migrate(empty)
        empty_pairs = await enrol(empty, min(100, options.pairs), END - timedelta(days=1))
        rate_empty, p99_empty = await accept_rate(empty, empty_pairs, options.accept, 10**8, now)
        rate_full, p99_full = await accept_rate(engine, pairs[:100], options.accept, 10**8, now)
        await empty.dispose()
        print(f"accept (store part, {options.accept} msgs, 20 senders): empty {rate_empty:,.0f} msg/s "
              f"(p99 {p99_empty:.1f} ms), full {rate_full:,.0f} msg/s (p99 {p99_full:.1f} ms)")

    commands = {"report": ("report", "--program", "stem", "--json"), "pairs": ("pair", "list", "--json")}
    for name, args in commands.items():
        if name in only:
            wall, rss, out = cli_run(layout.config, *args)
            print(f"{' '.join(args):32} {wall:7.2f} s, peak RSS {rss:,.0f} MiB, {out / 1024:,.0f} KiB of output")

    if "console" in only:
        try:
            pages = await console_pages(layout, now, bool(options.reuse))
        except Exception as exc:  # a figure of its own: the console could not be measured on this store
            print(f"console first pages: not measured ({type(exc).__name__}: {str(exc).strip()[:300]})")
        else:
            for page, (first, again, status, length) in pages.items():
                print(f"console {page:8} first page: {again * 1000:,.0f} ms (median of 4 GETs; the relay's first "
                      f"GET {first * 1000:,.0f} ms; HTTP {status}, {length / 1024:,.0f} KiB)")

    if "sweep" in only:
        clock = FixedClock(last + timedelta(days=20, hours=6))  # midday in the program's time zone
        if not options.no_freeze:
            warmup.freeze()  # as `serve` does once started: the bench's heap (pairs, modules) out of the GC's sight
        # Intake's engine as `serve` sets it up: its commits leave the WAL checkpoints to a task of their own.
        serving = create_engine(settings.database_url)
        checkpoints.outside_commits(serving)
        checkpointer = checkpoints.WalCheckpointer(serving)
        checkpointer.start()
        quiet = asyncio.Event()
        alone_timer = asyncio.get_running_loop().call_later(10, quiet.set)
        alone = await accepts_meanwhile(serving, pairs[:100], now, quiet)  # the same stream, 10 s, no sweep
        alone_timer.cancel()
        notices_before = await notice_count(serving)
        done = asyncio.Event()
        slow: list[SlowAccept] = []
        pressure, stream_began = pressure_totals(), time.perf_counter()
        meanwhile = asyncio.create_task(accepts_meanwhile(serving, pairs[:100], now, done, slow=slow))
        finished = False
        try:
            seconds, sent, where = await one_sweep(options, layout.config, settings, serving, clock)
            mails = await notice_count(serving) - notices_before
            print(f"nudge sweep, 20 days of silence ({where}): {seconds:.1f} s wall ({sent} sent in {mails} mails"
                  + (f", {seconds * 1000 / sent:.2f} ms per nudge)" if sent else ")"))
            finished = True
        except TimeoutError:
            made = await notice_count(serving) - notices_before
            print(f"nudge sweep, 20 days of silence: not done after {options.sweep_timeout:.0f} s (stopped; {made} "
                  "mails made by then)")
        finally:
            done.set()
            during = await meanwhile
            whole, stream_seconds = stalled(pressure, pressure_totals()), time.perf_counter() - stream_began
            if finished:  # what serve's hourly sweep costs once everything due was sent: its rules still run
                clock.advance(timedelta(hours=1))
                seconds, sent, where = await one_sweep(options, layout.config, settings, serving, clock)
                print(f"nudge sweep an hour later, everything due already sent ({where}, no accepts meanwhile): "
                      f"{seconds:.1f} s wall ({sent} sent)")
            await checkpointer.stop()
            await serving.dispose()
        print(f"accept (store part, 4 senders, one each per 50 ms) alone: {latency_line(alone)}")
        print(f"accept (store part, 4 senders, one each per 50 ms) during the sweep: {latency_line(during)}")
        if slow:
            print(slow_lines(slow, whole, stream_seconds))
    await engine.dispose()
    if copied is not None:
        shutil.rmtree(copied, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"bench process peak RSS: {usage.ru_maxrss / 1024:,.0f} MiB")
    if not options.keep and not options.reuse:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    if "accept" in only:
        print(f"full/empty accept ratio: {rate_full / rate_empty:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--accept", type=int, default=2000, help="messages accepted on each store")
    parser.add_argument("--sweep-timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--sweep-in-process", action="store_true", help="run the nudge sweep on the bench's event "
                        "loop (default: in a process of its own, as serve runs it)")
    parser.add_argument("--no-freeze", action="store_true", help="do not freeze the bench's heap before the sweep "
                        "(serve freezes its start-up heap)")
    parser.add_argument("--reuse", metavar="DIR", help="measure the store kept in DIR (an earlier --keep) "
                        "instead of building one")
    parser.add_argument("--copy", action="store_true", help="with --reuse: measure a fresh copy of the kept store "
                        "(removed after), so that it stays as built")
    parser.add_argument("--only", metavar="LIST", help="comma-separated measurements to run, of: "
                        + ", ".join(MEASURES) + " (default: all); or build: build the store, keep it, stop")
    opts = parser.parse_args()
    if opts.pairs < 1 or opts.messages < opts.pairs:
        parser.error("--pairs must be at least 1 and --messages at least --pairs")
    if opts.only and opts.only != "build" and not set(opts.only.split(",")) <= set(MEASURES):
        parser.error(f"--only takes some of: {', '.join(MEASURES)}; or build")
    if opts.only == "build" and opts.reuse:
        parser.error("--only build builds a new store: it does not go with --reuse")
    if opts.copy and not opts.reuse:
        parser.error("--copy needs --reuse DIR (the kept store to copy)")
    if opts.reuse and not (Path(opts.reuse) / "full" / "relay.yaml").is_file():
        parser.error(f"--reuse: {opts.reuse} holds no kept store (full/relay.yaml)")
    asyncio.run(main(opts))
