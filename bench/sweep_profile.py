"""Where a nudge sweep's time goes: cProfile over one sweep on a copy of a store kept by bench/scale.py.

    .venv/bin/python bench/scale.py --pairs 1000 --messages 10000 --only build     # prints DIR
    .venv/bin/python bench/sweep_profile.py --store DIR [--sort cumtime] [--top 60] [--later]

The sweep plans and composes in threads (asyncio.to_thread), which cProfile does not see; here that work
runs inline on the profiled thread instead, so every function shows (the wall time printed is then that
of a profiled, single-threaded sweep: compare it with other runs of this script, and measure wall time
with `bench/scale.py --reuse DIR --copy --only sweep`). The copy is removed after.

`--plain` profiles nothing: the sweep runs as it is (its threads too, on this process's event loop, with no
SMTP beside it), then once more an hour later, as `serve`'s hourly sweep finds the store once everything due
was sent; each prints its wall time and the CPU time of this process meanwhile. `--later` profiles that
second sweep instead of the first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # appended: a PYTHONPATH naming another checkout's relay/ wins (baselines)

from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from relay.clock import FixedClock  # noqa: E402
from relay.config import Settings, load_settings  # noqa: E402
from relay.nudges import sweep  # noqa: E402
from relay.store.database import create_engine, migrate  # noqa: E402


async def _inline(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


@contextlib.asynccontextmanager
async def copied_store(source: Path) -> AsyncIterator[tuple[Settings, AsyncEngine, FixedClock]]:
    """A copy of the kept store (removed after), its engine, and a clock 20 days after its last round."""
    facts = json.loads((source / "built.json").read_text())
    workdir = Path(tempfile.mkdtemp(prefix="relay-sweep-profile-"))
    try:
        shutil.copytree(source / "full", workdir / "full")
        settings = load_settings(workdir / "full" / "relay.yaml")
        engine = create_engine(settings.database_url)
        await migrate(engine)
        try:
            yield settings, engine, FixedClock(datetime.fromisoformat(facts["last"]) + timedelta(days=20, hours=6))
        finally:
            await engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def profiled_sweep(source: Path, profile: cProfile.Profile, later: bool) -> tuple[float, int]:
    async with copied_store(source) as (settings, engine, clock):
        if later:  # the first sweep unprofiled; the one profiled is an hour later, with nothing new to send
            await sweep.run(settings, engine, clock)
            clock.advance(timedelta(hours=1))
        started = time.perf_counter()
        profile.enable()
        result = await sweep.run(settings, engine, clock)
        profile.disable()
        return time.perf_counter() - started, len(result.sent)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def plain_sweeps(source: Path) -> None:
    async with copied_store(source) as (settings, engine, clock):
        for label in ("20 days of silence", "an hour later"):
            cpu, started = _cpu(), time.perf_counter()
            result = await sweep.run(settings, engine, clock)
            print(f"sweep, {label}: {time.perf_counter() - started:.1f} s wall, {_cpu() - cpu:.1f} s CPU, "
                  f"{len(result.sent)} sent")
            clock.advance(timedelta(hours=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, metavar="DIR",
                        help="a directory that `bench/scale.py --only build` (or --keep) printed")
    parser.add_argument("--sort", default="cumtime", choices=("cumtime", "tottime", "ncalls"))
    parser.add_argument("--top", type=int, default=60, help="how many functions to print")
    parser.add_argument("--plain", action="store_true",
                        help="no profiler: wall and CPU time of the sweep, then of one an hour later")
    parser.add_argument("--later", action="store_true",
                        help="profile the sweep an hour after the first (which runs unprofiled): what serve's "
                             "hourly sweep costs once everything due was sent")
    options = parser.parse_args()
    if not (options.store / "built.json").is_file():
        parser.error(f"{options.store}: not a store kept by bench/scale.py --only build or --keep (no built.json)")
    if options.plain:
        asyncio.run(plain_sweeps(options.store))
        return
    asyncio.to_thread = _inline  # type: ignore[assignment]  # see the module docstring
    profile = cProfile.Profile()
    seconds, sent = asyncio.run(profiled_sweep(options.store, profile, options.later))
    print(f"profiled sweep: {seconds:.1f} s, {sent} sent, {seconds * 1000 / max(1, sent):.2f} ms per nudge "
          "(profiled, single thread)")
    pstats.Stats(profile).sort_stats(options.sort).print_stats(options.top)


if __name__ == "__main__":
    main()
