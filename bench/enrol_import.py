"""`pair import` of N pairs against N single `create_pair` calls, in one process, each on a fresh SQLite
store of its own (same config: one program, welcomes on unless --no-welcome).

Prints both times, pairs per second, and the ratio import/single (lower is better). The issue's
target is 1,000 pairs in under 30 s for the import (which checks the whole file first, then writes it in
batches of relay/pair_import.BATCH pairs, each in a transaction of its own with a rest between them, so that a
relay serving on the store waits for one batch at most). The import is also run with the whole file as one
batch (the shape of earlier versions, which held the store's write lock throughout): the ratio batched/one
is what the batches and rests cost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.clock import SystemClock
from relay.config import load_settings
from relay.enrol import Person, create_pair
from relay.pair_import import BATCH, import_pairs
from relay.store.database import create_engine, migrate
from tests.nudging import write_program
from tests.support import Layout, free_port

COLUMNS = "mentor_email,mentor_name,mentor_handle,mentee_email,mentee_name,mentee_handle"


def people(index: int) -> tuple[Person, Person]:
    return (Person(f"mentor{index}@uni.example.net", f"Robert Smithson{index}", f"Oak{index}"),
            Person(f"mentee{index}@school.example.org", f"Alice Walker{index}", f"Maple{index}"))


def fresh_layout(welcome: bool) -> Layout:
    layout = Layout(root=Path(tempfile.mkdtemp()) / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    write_program(layout, welcome=welcome)
    return layout


async def singles(count: int, welcome: bool) -> float:
    layout = fresh_layout(welcome)
    settings = load_settings(layout.config)
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        clock = SystemClock()
        started = time.perf_counter()
        for index in range(count):
            mentor, mentee = people(index)
            await create_pair(settings, engine, clock, program_id="stem", mentor=mentor, mentee=mentee)
        return time.perf_counter() - started
    finally:
        await engine.dispose()


async def imported(count: int, welcome: bool, batch: int = BATCH) -> float:
    layout = fresh_layout(welcome)
    settings = load_settings(layout.config)
    file = layout.root / "cohort.csv"
    lines = [COLUMNS]
    for index in range(count):
        mentor, mentee = people(index)
        lines.append(",".join((mentor.email, mentor.name, mentor.handle, mentee.email, mentee.name, mentee.handle)))
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        started = time.perf_counter()
        outcome = await import_pairs(settings, engine, "stem", file, SystemClock().now(), batch=batch)
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    if len(outcome.created) != count:
        raise SystemExit(f"import created {len(outcome.created)} pairs, expected {count}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--no-welcome", action="store_true", help="programs without welcome mail")
    args = parser.parse_args()
    welcome = not args.no_welcome
    single = asyncio.run(singles(args.pairs, welcome))
    bulk = asyncio.run(imported(args.pairs, welcome))
    whole = asyncio.run(imported(args.pairs, welcome, batch=args.pairs))
    print(f"pairs: {args.pairs}, welcomes: {'on' if welcome else 'off'}")
    print(f"{'single create_pair calls':<32} {single:8.2f} s  {args.pairs / single:8.1f} pairs/s")
    print(f"{f'pair import (batches of {BATCH})':<32} {bulk:8.2f} s  {args.pairs / bulk:8.1f} pairs/s")
    print(f"{'pair import (one transaction)':<32} {whole:8.2f} s  {args.pairs / whole:8.1f} pairs/s")
    print(f"import/single time ratio: {bulk / single:.2f}; batched/one transaction: {bulk / whole:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
