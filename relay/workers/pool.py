"""The process pool that keeps a message's CPU work off the event loop, bounded per message.

Why a pool of single-process executors rather than one ProcessPoolExecutor: a task that runs over its
CPU budget must be stopped by killing its process, and killing a worker of a shared ProcessPoolExecutor
breaks the whole executor (every task in flight fails). Here each worker is its own one-process executor,
given one task at a time, so the one that is killed is replaced and no other session notices.

- `Pool.run(fn, *args)` awaits `fn(*args)` in a worker. `fn` must be a module-level function of
  relay/workers/tasks.py (it is pickled by name); arguments and result travel pickled, in the
  executor's own threads, never on the loop.
- The CPU budget (`limits.message_cpu_seconds`): a task still running after POLL seconds has its worker's
  CPU time read (/proc/<pid>/stat; on systems without /proc, wall time) every POLL seconds, against the
  worker's figure when the task began; over the budget, the worker is killed, replaced, and the task raises
  BudgetExceeded. That figure comes from the worker itself: each task returns its process's CPU time as it
  ends (tasks.measured), so the loop reads /proc only for the rare task that runs over POLL (it read it
  before and after every task: six reads of /proc per message, on the loop).
- Lanes: a task whose payload is larger than LARGE bytes may use at most workers-1 processes at once (when
  there are two or more), so a few large messages cannot take every worker from the small ones; and it runs
  at a lower CPU priority (tasks.at_low_priority), so that on busy cores the event loop and the small
  messages' work get the CPU first: a small message's reply does not wait for a large one's parsing.
- `workers: 0` runs every task in-process, on the caller's thread (the pure functions as the CLI and most
  tests use them); no budget is enforced then.
- Workers start from a forkserver that has already imported the task module, so starting or replacing
  one costs a fork, not an interpreter start. The initializer hands each worker the settings once
  (policies are then loaded by name from policies_dir, the DKIM key from its file) and warms it up
  (tasks.warm_up); a worker takes tasks only once that is done, at start and after a replacement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar, cast

from relay.config import Settings
from relay.dkim.signer import Signer
from relay.moderation.policy import PolicyBook
from relay.workers import tasks

log = logging.getLogger("relay.workers")

T = TypeVar("T")

POLL = 0.25  # seconds between two reads of a busy worker's CPU time
LARGE = 256 * 1024  # bytes of payload from which a task is "large" (see Lanes above)
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BudgetExceeded(Exception):
    """The task used more CPU than a message may; its worker was replaced."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"over {seconds:g} s of CPU")
        self.seconds = seconds


class WorkerLost(Exception):
    """The worker died under the task (killed from outside, out of memory); it was replaced."""


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


class _Worker:
    """One worker process, as a one-process executor."""

    def __init__(self, context: Any, settings: Settings) -> None:
        self.executor = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=tasks.initialise,
                                            initargs=(settings,))
        self.cpu = 0.0  # the process's CPU seconds when it became ready or last finished a task

    def pid(self) -> int | None:
        processes = getattr(self.executor, "_processes", None) or {}
        return next(iter(processes), None)

    def kill(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        self.executor.shutdown(wait=False, cancel_futures=True)


def _size(args: tuple[Any, ...]) -> int:
    return sum(len(a) for a in args if isinstance(a, bytes | bytearray | memoryview))


class Pool:
    def __init__(self, settings: Settings, policies: PolicyBook, signer: Signer | None,
                 workers: int | None = None) -> None:
        """`workers`: the number of processes (default: relay.yaml's `workers`); 0 runs tasks in-process
        with `policies` and `signer`."""
        self.settings = settings
        self.workers = settings.relay.workers if workers is None else workers
        self.cpu_seconds = settings.relay.limits.message_cpu_seconds
        self._environment = tasks.Environment(policies, signer)
        self._idle: asyncio.Queue[_Worker] | None = None
        self._large: asyncio.Semaphore | None = None
        self._all: set[_Worker] = set()
        self._starting: set[asyncio.Task[None]] = set()  # replacements starting (see _replace)
        self._context: Any = None
        self.replaced = 0  # workers replaced since start (over budget or lost)
        # CPU seconds and count of finished tasks by task name (logged at stop: the bench's stage figures)
        self.task_cpu: dict[str, list[float]] = {}
        self._stopping = False

    @property
    def in_process(self) -> bool:
        return self.workers == 0

    async def start(self) -> None:
        if self.in_process:
            return
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["relay.workers.tasks"])
        self._idle = asyncio.Queue()
        self._large = asyncio.Semaphore(max(1, self.workers - 1))
        started = [self._new() for _ in range(self.workers)]
        # Start every process now (and load the settings there), not at the first message.
        cpus = await asyncio.gather(*(asyncio.wrap_future(w.executor.submit(tasks.ready)) for w in started))
        for worker, cpu in zip(started, cpus, strict=True):
            worker.cpu = cpu
            self._idle.put_nowait(worker)
        log.info("%d worker process(es) ready; CPU budget %g s per task", self.workers, self.cpu_seconds)

    def _new(self) -> _Worker:
        worker = _Worker(self._context, self.settings)
        self._all.add(worker)
        return worker

    async def stop(self) -> None:
        """Wait for tasks under way (their sessions are finishing), then end the processes."""
        self._stopping = True
        if self.task_cpu:
            log.info("worker CPU by task: %s", ", ".join(
                f"{name} {cpu:.3f} s/{int(count)}" for name, (cpu, count) in sorted(self.task_cpu.items())))
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(asyncio.to_thread(w.executor.shutdown, True) for w in workers))
        await asyncio.gather(*self._starting, return_exceptions=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker; raises BudgetExceeded / WorkerLost, or what `fn` raised."""
        if self.in_process:
            return tasks.in_process(self._environment, fn, *args)
        assert self._idle is not None and self._large is not None, "Pool.start() was not awaited"
        large = _size(args) > LARGE
        lane: Any = self._large if large else contextlib.nullcontext()
        async with lane:
            worker = await self._idle.get()
            try:
                result = await self._watched(worker, fn, args, large)
            except (BudgetExceeded, WorkerLost, asyncio.CancelledError):
                self._replace(worker)  # killed, died, or still busy with a task nobody waits for
                raise
            except BaseException:
                self._idle.put_nowait(worker)  # `fn` raised: the worker itself is fine
                raise
            self._idle.put_nowait(worker)
            return result

    async def _watched(self, worker: _Worker, fn: Callable[..., T], args: tuple[Any, ...], large: bool) -> T:
        # large work yields the CPU to the loop and to small tasks (see Lanes)
        call = (tasks.measured, tasks.at_low_priority, fn, *args) if large else (tasks.measured, fn, *args)
        future = asyncio.wrap_future(worker.executor.submit(*call))
        started = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait([future], timeout=POLL)
                if done:
                    try:
                        result, cpu = future.result()
                    except BrokenProcessPool:
                        raise WorkerLost("the worker process died") from None
                    except BaseException:
                        found = self._cpu_of(worker)  # `fn` raised: the next task is measured from here
                        worker.cpu = worker.cpu if found is None else found
                        raise
                    sums = self.task_cpu.setdefault(getattr(fn, "__name__", "task"), [0.0, 0])
                    sums[0] += cpu - worker.cpu
                    sums[1] += 1
                    worker.cpu = cpu
                    return cast(T, result)
                # Still running after POLL: only now is its CPU read from outside (a read of /proc costs the
                # loop more than the CPU of a small task; a task that ends sooner reports its own).
                now_cpu = self._cpu_of(worker)
                used = now_cpu - worker.cpu if now_cpu is not None else time.monotonic() - started
                if used > self.cpu_seconds:
                    log.warning("a %s task used %.1f s of CPU (budget %g s): worker %s replaced",
                                getattr(fn, "__name__", "worker"), used, self.cpu_seconds, worker.pid())
                    raise BudgetExceeded(self.cpu_seconds)
        except BaseException:
            future.cancel()
            raise

    @staticmethod
    def _cpu_of(worker: _Worker) -> float | None:
        pid = worker.pid()
        return _cpu_seconds(pid) if pid is not None else None

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` (when alive) and put a fresh one in its place, once it has started and warmed up (so that
        no task waits for a cold process while another worker is free)."""
        self.replaced += 1
        self._all.discard(worker)
        worker.kill()
        if self._idle is not None and not self._stopping:
            fresh = self._new()
            starting = asyncio.create_task(self._when_ready(fresh))
            self._starting.add(starting)
            starting.add_done_callback(self._starting.discard)

    async def _when_ready(self, worker: _Worker) -> None:
        try:
            worker.cpu = await asyncio.wrap_future(worker.executor.submit(tasks.ready))
        except Exception:  # could not start (out of memory?): the next task tries it again and says why
            log.warning("a replacement worker did not start", exc_info=True)
        if self._idle is not None and not self._stopping:
            self._idle.put_nowait(worker)
