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
   moderator, wall time of one GET each.
7. A nudge sweep 20 days after the last round (every mentee waiting): relay.nudges.sweep.run, wall time;
   stopped after --sweep-timeout seconds.

The last line is `full/empty accept ratio: X.XX` (messages/s on the full store over the empty one).
The store stays in the printed directory with --keep.

To measure the sweep alone, again and again on the same store (e.g. before and after a change):
`--only build` builds the store, keeps it and stops; `--store DIR --only sweep` then runs step 7 on a fresh
copy of it each time (the copy is removed after).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
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

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from relay import ids  # noqa: E402
from relay.archive.verify import verify  # noqa: E402
from relay.clock import FixedClock  # noqa: E402
from relay.config import Settings, load_settings  # noqa: E402
from relay.nudges import sweep as nudge_sweep  # noqa: E402
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
from relay.store.schema import members, outbound  # noqa: E402
from tests.consolekit import add_moderator, prepare, serving, session  # noqa: E402
from tests.support import DOMAIN, Layout, free_port  # noqa: E402

BATCH = 256
PAIR_BATCH = 1000
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
            found = (await connection.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")).all()
    except Exception:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
        return []
    return [(str(name), int(size)) for name, size in found[:12]]


async def accept_rate(engine: AsyncEngine, pairs: list[PairInfo], count: int, start_number: int,
                      now: datetime, senders: int = 20) -> tuple[float, float]:
    """Messages/s and p99 latency (ms) of the store's part of accepting `count` messages."""
    committer = Committer(engine)
    committer.start()
    latencies: list[float] = []

    async def one(number: int) -> None:
        pair = pairs[number % len(pairs)]
        started = time.perf_counter()
        async with engine.connect() as connection:
            found = await find_by_alias(connection, pair.mentor.alias)
            assert found is not None
            await pair_stats(connection, pair.id, now, 41)
            await group_thread_maps(connection, pair.id, pair.mentee.id, [pair.mentor.id],
                                    [f"<m{number - 1}.{pair.mentor.id}@uni.example.net>"])
        item = accepted_item(pair, pair.mentee, pair.mentor, number, now, None, hold=False)
        await committer.run(Merged(store_accepted_many, item))
        latencies.append(time.perf_counter() - started)

    async def sender(offset: int) -> None:
        for number in range(start_number + offset, start_number + count, senders):
            await one(number)

    started = time.perf_counter()
    await asyncio.gather(*(sender(k) for k in range(senders)))
    elapsed = time.perf_counter() - started
    await committer.close()
    latencies.sort()
    return count / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000


def cli_run(config: Path, *args: str) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and output size (bytes) of one `mentor-relay` command (run from the
    config's directory: `python -m` puts the working directory first on the path)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([sys.executable, "-m", "relay", "--config", str(config), *args], stdout=out,
                                   stderr=subprocess.PIPE, cwd=config.parent, env=os.environ.copy())
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if process.returncode != 0:
            assert process.stderr is not None
            raise RuntimeError(f"{args}: exit {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        out.seek(0, os.SEEK_END)
        return wall, usage.ru_maxrss / 1024, out.tell()


async def timed(what: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await what()
    return time.perf_counter() - started, result


async def console_pages(layout: Layout, now: datetime) -> dict[str, tuple[float, int, int]]:
    """The first GET of each page. The moderator is added before the relay starts: on a large store the
    sweeps a start runs hold the write lock long enough for a CLI write to fail (issue 14, item 2)."""
    found = {}
    await add_moderator(layout, "ana", "stem", admin=True)
    async with serving(layout, clock=FixedClock(now)), session(layout, "ana") as client:
        for path in ("/held", "/pairs"):
            started = time.perf_counter()
            response = await client.get(path)
            found[path] = (time.perf_counter() - started, response.status_code, len(response.content))
    return found


def make_layout(root: Path) -> tuple[Layout, Settings]:
    layout = Layout(root=root, smtp_port=free_port(), sink_port=free_port())
    layout.write()
    prepare(layout)
    return layout, load_settings(layout.config)


async def sweep_figure(settings: Settings, engine: AsyncEngine, last: datetime, timeout: float) -> None:
    clock = FixedClock(last + timedelta(days=20, hours=6))  # midday in the program's time zone
    try:
        seconds, result = await asyncio.wait_for(timed(lambda: nudge_sweep.run(settings, engine, clock)), timeout)
        sent = len(result.sent)
        print(f"nudge sweep, 20 days of silence: {seconds:.1f} s wall ({sent} sent"
              + (f", {seconds * 1000 / sent:.2f} ms per nudge)" if sent else ")"))
    except TimeoutError:
        print(f"nudge sweep, 20 days of silence: not done after {timeout:.0f} s (stopped)")


def reuse(source: Path) -> tuple[Path, Settings, datetime]:
    """A fresh copy of a store that `--only build` left (its `full/` directory and `built.json`), so that each
    run measures the same store as it was built, whatever an earlier run wrote into its own copy (relay.yaml
    names the SQLite file relative to itself)."""
    facts = json.loads((source / "built.json").read_text())
    workdir = Path(tempfile.mkdtemp(prefix="relay-scale-"))
    shutil.copytree(source / "full", workdir / "full")
    return workdir, load_settings(workdir / "full" / "relay.yaml"), datetime.fromisoformat(facts["last"])


async def main(options: argparse.Namespace) -> None:
    if options.store is not None:
        workdir, settings, last = reuse(options.store)
        print(f"store: a copy of {options.store} in {workdir}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        engine = create_engine(settings.database_url)
        await migrate(engine)
        await sweep_figure(settings, engine, last, options.sweep_timeout)
        await engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
        return
    workdir = Path(tempfile.mkdtemp(prefix="relay-scale-"))
    print(f"store: {options.pairs} pairs, {options.messages} messages; in {workdir}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    layout, settings = make_layout(workdir / "full")
    engine = create_engine(settings.database_url)
    await migrate(engine)
    path = Path(settings.database_url.split("///", 1)[1]) if engine.dialect.name == "sqlite" else None
    started = time.perf_counter()
    pairs = await enrol(engine, options.pairs, END - timedelta(days=366))
    raw_total, last = await fill(engine, pairs, options.messages)
    print(f"built in {time.perf_counter() - started:.1f} s")
    if options.only == "build":
        await store_bytes(engine, path)  # checkpointed: the file alone is the store
        await engine.dispose()
        (workdir / "built.json").write_text(json.dumps({"pairs": options.pairs, "messages": options.messages,
                                                        "last": last.isoformat()}))
        print(f"kept: {workdir} (measure the sweep on a copy of it: --store {workdir} --only sweep)")
        return

    size = await store_bytes(engine, path)
    raw_mean = raw_total / options.messages
    print(f"bytes per message: {size / options.messages:,.0f} (store {size / 2**20:,.1f} MiB; mean raw "
          f"{raw_mean:,.0f} B; {size / raw_total:.2f}x the raw size)")

    if path is not None:
        print("  by table and index (SQLite dbstat): " + ", ".join(
            f"{name} {pages / options.messages:,.0f}" for name, pages in await table_bytes(engine)))
    seconds, verdict = await timed(lambda: verify(engine))
    print(f"archive verify: {verdict.entries:,} entries in {seconds:.1f} s = {verdict.entries / seconds:,.0f} "
          f"entries/s (ok: {verdict.ok})")

    _, empty_settings = make_layout(workdir / "empty")
    empty = create_engine(empty_settings.database_url)
    await migrate(empty)
    empty_pairs = await enrol(empty, min(100, options.pairs), END - timedelta(days=1))
    now = last + timedelta(minutes=1)
    rate_empty, p99_empty = await accept_rate(empty, empty_pairs, options.accept, 10**8, now)
    rate_full, p99_full = await accept_rate(engine, pairs[:100], options.accept, 10**8, now)
    await empty.dispose()
    print(f"accept (store part, {options.accept} msgs, 20 senders): empty {rate_empty:,.0f} msg/s "
          f"(p99 {p99_empty:.1f} ms), full {rate_full:,.0f} msg/s (p99 {p99_full:.1f} ms)")

    for args in (("report", "--program", "stem", "--json"), ("pair", "list", "--json")):
        wall, rss, out = cli_run(layout.config, *args)
        print(f"{' '.join(args):32} {wall:7.2f} s, peak RSS {rss:,.0f} MiB, {out / 1024:,.0f} KiB of output")

    try:
        pages = await console_pages(layout, now)
    except Exception as exc:  # a figure of its own: the console could not be measured on this store
        print(f"console first pages: not measured ({type(exc).__name__}: {str(exc).strip()[:300]})")
    else:
        for page, (seconds, status, length) in pages.items():
            print(f"console {page:8} first page: {seconds * 1000:,.0f} ms (HTTP {status}, "
                  f"{length / 1024:,.0f} KiB)")

    await sweep_figure(settings, engine, last, options.sweep_timeout)
    await engine.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"bench process peak RSS: {usage.ru_maxrss / 1024:,.0f} MiB")
    if not options.keep:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    print(f"full/empty accept ratio: {rate_full / rate_empty:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--accept", type=int, default=2000, help="messages accepted on each store")
    parser.add_argument("--sweep-timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--only", choices=("build", "sweep"),
                        help="build: build the store, keep it and stop; sweep: only the nudge sweep, on a copy "
                             "of the store given with --store")
    parser.add_argument("--store", type=Path, metavar="DIR",
                        help="a directory that --only build printed: measure on a fresh copy of its store")
    opts = parser.parse_args()
    if opts.pairs < 1 or opts.messages < opts.pairs:
        parser.error("--pairs must be at least 1 and --messages at least --pairs")
    if (opts.only == "sweep") != (opts.store is not None):
        parser.error("--only sweep needs --store DIR (a store kept by --only build), and --store needs it")
    if opts.store is not None and not (opts.store / "built.json").is_file():
        parser.error(f"{opts.store}: not a store kept by --only build (no built.json)")
    asyncio.run(main(opts))
