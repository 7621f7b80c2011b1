"""`serve`'s nudge sweep in a process of its own, so that a large sweep never holds up intake (issue 14).

In `serve`'s process a sweep of 40,000 nudges kept the event loop that answers SMTP busy most of the time
(writing the rows: SQLAlchemy's parameters, zlib, JSON, the chain's hashes; and the full collections of
the heap the sweep grows), and accepts waited for it up to half a second. Here the sweep runs the same code
(relay/nudges/sweep.run) on its own interpreter, engine and connections:

    python -m relay.nudges.child CONFIG NOW

at the instant NOW (ISO 8601: the relay's clock when the run began, so an injected clock still decides what
is due). Its write transactions are short (MAILS_PER_COMMIT notices each, the rows made ready before), and
on SQLite they do not checkpoint the WAL within the turn (relay/store/checkpoints.py).

Each of them waits for its turn among `serve`'s writers, over the pipes: the child writes `turn` on its
stdout and waits for `go` on its stdin; `ChildSweep` takes the writers' turn of `serve`'s engine
(relay/store/database.writers_turn: an asyncio lock on SQLite, first come first served), answers `go`, and
holds the turn until the child writes `done` after its commit. So on SQLite a group commit that comes during
a sweep transaction waits in that queue and gets the write lock as soon as the transaction ends, instead of
meeting the sweep at SQLite's own lock, whose busy handler sleeps between tries (1, 2, 5, ... 100 ms) and
could sleep through the gaps between sweep transactions. On PostgreSQL the turn is given at once (its
writers wait on the writers' advisory lock, relay/store/database.take_write_lock). Without a parent that
answers (`ChildSweep`), the child is not run.

It prints one JSON line last: {"sent": N, "deferred": N, "ended": [pair ids]}. SIGTERM or SIGINT: the sweep
ends after the transaction under way (each commits or rolls back whole; every notice is sent once whatever
the sweep did before: relay/nudges/keys.py), and the line says what it did. The parent's stop (`stop`)
sends SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from relay.store import checkpoints
from relay.store.database import writers_turn

MAILS_PER_COMMIT = 20  # notices per write transaction (each with its key, event and chain entries)
CHECKPOINT_EVERY = 4  # SQLite: the child checkpoints the WAL after every this many commits (PASSIVE)
TURN_HELD = 15.0  # seconds the parent holds its writers' turn for one child transaction at most
STOP_WAIT = 60.0  # seconds a cancelled run waits for the child to end its transaction under way

log = logging.getLogger("relay.nudges")


@dataclass
class ChildResult:
    """What a sweep in its own process did (the parent wakes delivery, forgets ended pairs' aliases)."""
    sent: int = 0
    deferred: int = 0
    ended: list[int] = field(default_factory=list)


class ChildSweep:
    """Runs one sweep at a time in a child process (`run`), and stops the one under way (`stop`). `engine`:
    the parent's, whose writers' turn each of the child's write transactions takes."""

    def __init__(self, config: Path, engine: AsyncEngine) -> None:
        self.config = config
        self.engine = engine
        self._process: asyncio.subprocess.Process | None = None
        self._told_to_stop = False

    async def run(self, now: datetime) -> ChildResult:
        """One sweep as if the time were `now`, in a new process; its result once it has exited. A failed
        sweep (exit status not 0) raises RuntimeError: the scheduler logs it and the next run tries again.
        A sweep that `stop` ended before it could take the signal itself (still starting) did nothing: its
        result is empty, and that is no failure."""
        # A session of its own: Ctrl-C in the terminal that runs `serve` reaches `serve`, whose stop ends the
        # sweep (`stop`), and not the child directly (mid-import, it would die with a traceback in the log).
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "relay.nudges.child", str(self.config), now.isoformat(),
            stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.PIPE, start_new_session=True)
        self._process = process
        self._told_to_stop = False
        try:
            last = await self._talk(process)
            await process.wait()
        except asyncio.CancelledError:  # the relay's stop gave up waiting: end it, and wait a bounded time
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WAIT):
                    await process.wait()
            raise
        finally:
            self._process = None
        if process.returncode == -signal.SIGTERM and self._told_to_stop:
            log.info("nudge sweep stopped as it was starting (the relay is stopping): nothing sent")
            return ChildResult()
        if process.returncode != 0:
            raise RuntimeError(f"the nudge sweep's process exited with status {process.returncode}")
        found: dict[str, Any] = json.loads(last) if last else {}
        return ChildResult(sent=int(found.get("sent", 0)), deferred=int(found.get("deferred", 0)),
                           ended=[int(pair) for pair in found.get("ended", [])])

    async def _talk(self, process: asyncio.subprocess.Process) -> str:
        """Give the child its writers' turns until it exits; returns its last line (the result)."""
        assert process.stdout is not None and process.stdin is not None
        last = ""
        while line := (await process.stdout.readline()).decode(errors="replace").strip():
            if line != "turn":
                last = line
                continue
            async with writers_turn(self.engine):
                try:
                    process.stdin.write(b"go\n")
                    await process.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    continue  # it has gone: the next read says so
                with contextlib.suppress(TimeoutError):  # a child that hangs: SQLite's own lock still holds
                    async with asyncio.timeout(TURN_HELD):
                        line = (await process.stdout.readline()).decode(errors="replace").strip()
                if not line:
                    break
        return last

    def stop(self) -> None:
        """Ask the sweep under way (if any) to end after its current transaction."""
        process = self._process
        if process is not None and process.returncode is None:
            self._told_to_stop = True
            with contextlib.suppress(ProcessLookupError):
                process.terminate()


async def _sweep(config: Path, now: datetime) -> dict[str, Any]:
    from relay.clock import FixedClock
    from relay.config import load_settings
    from relay.nudges import sweep
    from relay.store.database import create_engine

    settings = load_settings(config)
    engine = create_engine(settings.database_url)
    checkpoints.outside_commits(engine)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    @contextlib.asynccontextmanager
    async def turn() -> AsyncIterator[None]:
        """This write transaction's turn among the parent's writers (see the module docstring)."""
        sys.stdout.write("turn\n")
        sys.stdout.flush()
        if (await reader.readline()).strip() != b"go":
            raise RuntimeError("the relay did not give the nudge sweep its turn to write (it has gone)")
        # No garbage collection within the turn: the sweep's heap grows with what it has sent, and at 100,000
        # pairs a full collection took 300-480 ms; inside a turn, intake's group commits waited that long.
        # The collection that comes due happens after the turn is given back.
        gc.disable()
        try:
            yield
        finally:
            sys.stdout.write("done\n")
            sys.stdout.flush()
            gc.enable()

    commits = 0

    async def between() -> bool:
        """After each commit (its turn given back): on SQLite, every CHECKPOINT_EVERY commits, the WAL
        checkpoint that its commits do not do (relay/store/checkpoints.py); then go on unless told to stop (then the
        sweep ends here)."""
        nonlocal commits
        commits += 1
        if commits % CHECKPOINT_EVERY == 0:
            await checkpoints.checkpoint(engine)
        return not stopping.is_set()

    try:
        result = await sweep.run(settings, engine, FixedClock(now), mails_per_commit=MAILS_PER_COMMIT,
                                 between=between, turn=turn)
    finally:
        await engine.dispose()
    if stopping.is_set():
        log.info("nudge sweep stopped (told to): %d mail(s) sent before", len(result.sent))
    return {"sent": len(result.sent), "deferred": len(result.deferred), "ended": result.ended}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m relay.nudges.child CONFIG NOW", file=sys.stderr)
        return 2
    try:
        now = datetime.fromisoformat(argv[1])
    except ValueError:
        print(f"error: NOW: expected a time such as 2026-11-03T09:00:00+00:00, got {argv[1]!r}", file=sys.stderr)
        return 2
    if now.tzinfo is None:
        print(f"error: NOW: {argv[1]!r} has no time zone", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(json.dumps(asyncio.run(_sweep(Path(argv[0]), now))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
