"""The process pool that keeps a message's CPU work off the event loop, bounded per message.

Why worker processes of our own rather than a ProcessPoolExecutor: a task that runs over its CPU budget
must be stopped by killing its process, and killing a worker of a shared ProcessPoolExecutor breaks the
whole executor (every task in flight fails). Here each worker is a process with a pipe of its own, given one
task at a time, so the one that is killed is replaced and no other session notices. The loop drives the
pipes itself (`_Worker.call`): a small task is written to the pipe and its answer read when the loop sees
the pipe readable. A one-process executor per worker, as before, put two threads of its own between the
loop and each task (one feeding its queue, one reading the results and waking the loop), each taking the
interpreter's lock from the loop: `bench/throughput.py` went from 113-122 to 155-179 messages a second
with the pipes, at 9-10 ms of CPU per message instead of 12-13.

- `Pool.run(fn, *args)` awaits `fn(*args)` in a worker. `fn` must be a module-level function of
  relay/workers/tasks.py (it is pickled by name); arguments and result travel pickled (up to ON_LOOP bytes
  on the loop, which a pipe always holds at once; more are written and read in threads), and the worker
  runs tasks.serve. What a task raises comes back to its caller; SystemExit or KeyboardInterrupt come back
  as RuntimeError, so that no task can end the relay.
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
  one costs a fork, not an interpreter start. Each worker gets the settings once, as it starts
  (tasks.initialise: policies are then loaded by name from policies_dir, the DKIM key from its file) and
  warms up (tasks.warm_up); a worker takes tasks only once that is done, at start and after a replacement.
  A worker whose pipe ends (the process died) fails its task with WorkerLost and is replaced. A replacement
  that cannot start (no memory, no file descriptors) is tried again, with pauses up to RESTART_MAX seconds,
  until it starts: the pool never stays short. A task waits at most `Pool.wait` seconds for a free worker.
- `stop()` lets the tasks under way finish (each within its budget); from then on every task, waiting or
  new, fails at once with WorkerLost (intake answers 451: the sender tries again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from relay.config import Settings
from relay.dkim.signer import Signer
from relay.moderation.policy import PolicyBook
from relay.workers import tasks

log = logging.getLogger("relay.workers")

T = TypeVar("T")

POLL = 0.25  # seconds between two reads of a busy worker's CPU time
LARGE = 256 * 1024  # bytes of payload from which a task is "large" (see Lanes above)
# A task's pickled bytes up to this size are written, and its answer read, on the loop; above it, in threads.
# A pipe holds about 180-210 KB on Linux: a write larger than what it holds would block the loop until the
# worker read the rest (and a worker the scheduler left waiting would hold the loop as long).
ON_LOOP = 64 * 1024
READY = 60.0  # seconds a starting worker has to become ready (load the settings, warm up)
RESTART_MAX = 30.0  # at most this many seconds between two attempts to start a replacement that failed
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BudgetExceeded(Exception):
    """The task used more CPU than a message may; its worker was replaced."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"over {seconds:g} s of CPU")
        self.seconds = seconds


class WorkerLost(Exception):
    """The worker died under the task (killed from outside, out of memory); it was replaced."""


class _WorkerGone(WorkerLost):
    """The worker had died before the task reached it (its pipe was closed): another may take the task."""


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


class _Worker:
    """One worker process, driven from the event loop over a pipe of its own (tasks.serve at the other end):
    a task goes out as one pickled message, and its answer is read when the loop sees the pipe readable. No
    thread stands between the loop and the process (a one-process executor had two: one feeding its queue,
    one reading its results and waking the loop), except to move a large task's bytes."""

    def __init__(self, context: Any, settings: Settings) -> None:
        self.connection, child = context.Pipe(duplex=True)
        self.process = context.Process(target=tasks.serve, args=(child, settings), name="relay-worker", daemon=True)
        self.process.start()
        child.close()
        self.cpu = 0.0  # the process's CPU seconds when it became ready or last finished a task
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set while the loop watches the pipe for an answer
        self._far: asyncio.Future[Any] | None = None  # a large task's exchange, in threads
        self._pending: asyncio.Future[Any] | None = None  # the answer of the task under way
        self._peek: socket.socket | None = None  # our end of the pipe, to look at an answer's length first

    def pid(self) -> int | None:
        return self.process.pid

    def call(self, call: tuple[Any, ...], large: bool) -> asyncio.Future[Any]:
        """Send one task; the future is its answer (what the task returned, or raised), WorkerLost when the process
        dies first or the pool closes the worker; _WorkerGone when it had died before the task reached it (its
        pipe was closed). A large task is pickled, and any task over ON_LOOP bytes sent and its answer read, in
        threads, not on the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        payload = None if large else pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
        if payload is None or len(payload) > ON_LOOP:
            self._pending = future
            self._far = asyncio.ensure_future(self._far_call(call, payload, future))
            return future
        try:
            self._send(payload)  # an idle worker waits to read it; it fits in the pipe
        except WorkerLost:
            raise _WorkerGone("the worker process had died") from None
        self._pending = future

        def readable() -> None:
            self._unwatch()
            if future.done():  # given up on: over its budget, or cancelled; the worker is replaced
                return
            if not self._small_answer():  # (a group's copies, say) read in a thread, as a large task's
                self._far = asyncio.ensure_future(self._settle(future, asyncio.to_thread(self._received)))
                return
            try:
                future.set_result(self._received())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop = loop
        loop.add_reader(self.connection.fileno(), readable)
        future.add_done_callback(lambda _: self._unwatch())
        return future

    async def _far_call(self, call: tuple[Any, ...], payload: bytes | None, future: asyncio.Future[Any]) -> None:
        """A task's bytes (`payload`, or `call` pickled here) sent, and its answer read and unpickled, in threads
        (tens of MB copied each way would hold the loop for milliseconds, and a write larger than the pipe holds
        would wait for the worker); the outcome goes to `future` unless it was given up on meanwhile (over its
        budget, cancelled, or the pool closed the worker: it is then killed, which ends the threads)."""
        def send() -> None:
            if not self.process.is_alive():  # dead before the task reached it: another worker may take it
                raise _WorkerGone("the worker process had died")
            # (dying while it reads the task, perhaps of the task, costs the task: WorkerLost, no retry elsewhere)
            self._send(payload if payload is not None else pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))

        async def exchange() -> Any:
            await asyncio.to_thread(send)
            return await asyncio.to_thread(self._received)

        await self._settle(future, exchange())

    @staticmethod
    async def _settle(future: asyncio.Future[Any], outcome: Awaitable[Any]) -> None:
        """Await `outcome` and hand it to `future`, unless the task was given up on meanwhile."""
        try:
            result = await outcome
        except asyncio.CancelledError:
            if not future.done():
                future.set_exception(WorkerLost("the task's exchange with its worker was cancelled"))
            raise
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)

    def _send(self, payload: bytes) -> None:
        try:
            self.connection.send_bytes(payload)
        except OSError:  # the process is gone (its end of the pipe closed)
            raise WorkerLost("the worker process died") from None

    def _small_answer(self) -> bool:
        """Whether the answer waiting in the pipe is at most ON_LOOP bytes, by its length header (the first four
        bytes of a multiprocessing.Connection message), peeked at without reading it: a longer one, or a header
        not yet whole, is read in a thread (on the loop the read would wait for the worker to write it all)."""
        if self._peek is None:
            self._peek = socket.socket(fileno=os.dup(self.connection.fileno()))
        try:
            head = self._peek.recv(4, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return True  # (the read on the loop finds out what is wrong at once)
        if not head:
            return True  # the worker has gone: the read says so at once
        return len(head) == 4 and 0 <= struct.unpack("!i", head)[0] <= ON_LOOP

    def _received(self) -> Any:
        return _answer(self._receive())

    def _receive(self) -> bytes:
        try:
            return self.connection.recv_bytes()
        except (EOFError, OSError):
            raise WorkerLost("the worker process died") from None
        except Exception as exc:  # (out of memory) part of the answer may be left in the pipe: never use it again
            raise WorkerLost(f"the worker's answer could not be read: {exc!r}") from None

    def _unwatch(self) -> None:
        """Stop watching the pipe (before it is closed: the loop's selector must not keep a closed descriptor,
        whose number the next pipe may get)."""
        if self._loop is not None:
            self._loop.remove_reader(self.connection.fileno())
            self._loop = None

    def close(self) -> None:
        """Close our end of the pipe: an idle worker reads the end of it and exits. A task still waiting for its
        answer fails with WorkerLost (nothing would read the answer now)."""
        if not self.closed:
            self._unwatch()
            self.closed = True
            if self._pending is not None and not self._pending.done():
                self._pending.set_exception(WorkerLost("the worker was stopped under the task"))
            with contextlib.suppress(OSError):
                self.connection.close()
            if self._peek is not None:
                self._peek.close()

    def kill(self) -> None:
        _kill(self)
        self.close()


def _kill(worker: _Worker) -> None:
    """SIGKILL the worker's process while it is alive: once it has exited (the forkserver reaps it at once) its
    id may already be another process's."""
    if worker.process.is_alive():
        with contextlib.suppress(OSError):
            worker.process.kill()


def _answer(data: bytes) -> Any:
    succeeded, value = pickle.loads(data)
    if not succeeded:
        raise value
    return value


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
        self._idle: asyncio.Queue[_Worker | None] | None = None  # None: the pool has stopped
        self._large: asyncio.Semaphore | None = None
        self._all: set[_Worker] = set()
        self._starting: set[asyncio.Task[Any]] = set()  # replacements starting
        self._reaping: set[asyncio.Task[Any]] = set()  # killed workers' processes waited for
        # how long a task may wait for a free worker (each task ends within its budget, so only a pool that
        # cannot start workers waits this long): then WorkerLost, a temporary refusal
        self.wait = max(60.0, 3 * self.cpu_seconds)
        self._busy: set[asyncio.Future[Any]] = set()  # tasks under way
        self._context: Any = None
        self.replaced = 0  # workers replaced since start (over budget or lost)
        # CPU seconds and count of finished tasks by task name (logged at stop: the bench's stage figures)
        self.task_cpu: dict[str, list[float]] = {}
        self._stopping = False

    def pids(self) -> list[int]:
        """The worker processes' ids (none when tasks run in-process)."""
        return [pid for pid in (worker.pid() for worker in self._all) if pid is not None]

    @property
    def in_process(self) -> bool:
        return self.workers == 0

    async def start(self) -> None:
        if self.in_process:
            log.warning("workers: 0: every message is worked on in the relay's own process, with no CPU budget; "
                        "a large or hostile message stalls every session meanwhile (never a production choice)")
            return
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["relay.workers.tasks"])
        self._idle = asyncio.Queue()
        self._large = asyncio.Semaphore(max(1, self.workers - 1))
        started = [self._new() for _ in range(self.workers)]
        # Start every process now (and load the settings there), not at the first message.
        try:
            cpus = await asyncio.wait_for(asyncio.gather(*(w.call((tasks.ready,), large=False) for w in started)),
                                          READY)
        except TimeoutError:
            for worker in started:
                worker.kill()
            raise RuntimeError(f"the worker processes did not start within {READY:g} s") from None
        for worker, cpu in zip(started, cpus, strict=True):
            worker.cpu = cpu
            self._idle.put_nowait(worker)
        log.info("%d worker process(es) ready; CPU budget %g s per task", self.workers, self.cpu_seconds)

    def _new(self) -> _Worker:
        worker = _Worker(self._context, self.settings)
        self._all.add(worker)
        return worker

    async def stop(self) -> None:
        """Wait for tasks under way (their sessions are finishing), then end the processes. From here on no task
        is given a worker: each fails with WorkerLost (a temporary refusal), those waiting for one as well."""
        self._stopping = True
        if self.task_cpu:
            log.info("worker CPU by task: %s", ", ".join(
                f"{name} {cpu:.3f} s/{int(count)}" for name, (cpu, count) in sorted(self.task_cpu.items())))
        if self._busy:  # each is bounded by the CPU budget
            await asyncio.wait(set(self._busy), timeout=self.cpu_seconds + 2 * POLL + 5)
        for starting in self._starting:
            starting.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        workers, self._all = list(self._all), set()
        for worker in workers:
            worker.close()
        if self._idle is not None:
            while not self._idle.empty():
                self._idle.get_nowait()
            self._idle.put_nowait(None)  # each task waiting for a worker learns it, and passes it on
        await asyncio.gather(*self._reaping, *(asyncio.to_thread(_end, w) for w in workers))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker; raises BudgetExceeded / WorkerLost, or what `fn` raised."""
        if self.in_process:
            return tasks.in_process(self._environment, fn, *args)
        assert self._idle is not None and self._large is not None, "Pool.start() was not awaited"
        if self._stopping:
            raise WorkerLost("the relay is stopping")
        large = _size(args) > LARGE
        lane: Any = self._large if large else contextlib.nullcontext()
        async with lane:
            # A worker that died while idle (killed, out of memory) is replaced, and the task goes to another: a
            # task sent on the loop finds out as it is sent (its pipe is closed), one sent from a thread (large,
            # or over ON_LOOP) asks first. Bounded: after as many dead workers as there are workers, and one
            # more, it fails.
            for _ in range(self.workers + 1):
                worker = await self._take()
                try:
                    result = await self._watched(worker, fn, args, large)
                except _WorkerGone:
                    log.warning("worker %s had died while idle: replaced, the task given to another", worker.pid())
                    self._replace(worker)
                    continue
                except (BudgetExceeded, WorkerLost, asyncio.CancelledError):
                    self._replace(worker)  # killed, died, or still busy with a task nobody waits for
                    raise
                except BaseException:
                    self._idle.put_nowait(worker)  # `fn` raised: the worker itself is fine
                    raise
                self._idle.put_nowait(worker)
                return result
            raise WorkerLost("no worker process could take the task")

    async def _take(self) -> _Worker:
        """An idle worker; WorkerLost when the pool has stopped, or when none was free for `wait` seconds."""
        assert self._idle is not None
        if self._idle.empty():
            try:
                async with asyncio.timeout(self.wait):
                    worker = await self._idle.get()
            except TimeoutError:
                raise WorkerLost(f"no worker process was free within {self.wait:g} s") from None
        else:
            worker = self._idle.get_nowait()
        if worker is None or self._stopping:
            self._idle.put_nowait(worker)  # (a worker is closed by stop(); None tells the next waiter)
            raise WorkerLost("the relay is stopping")
        return worker

    async def _watched(self, worker: _Worker, fn: Callable[..., T], args: tuple[Any, ...], large: bool) -> T:
        # large work yields the CPU to the loop and to small tasks (see Lanes)
        call = (tasks.measured, tasks.at_low_priority, fn, *args) if large else (tasks.measured, fn, *args)
        future = worker.call(call, large)
        self._busy.add(future)
        future.add_done_callback(self._busy.discard)
        budget = _Budget(worker, future, getattr(fn, "__name__", "worker"), self.cpu_seconds)
        try:
            result, cpu = await future
        except (BudgetExceeded, WorkerLost, asyncio.CancelledError):
            future.cancel()  # (cancelled: nobody waits for the task; its worker is replaced)
            raise
        except BaseException:
            found = self._cpu_of(worker)  # `fn` raised: the next task is measured from here
            worker.cpu = worker.cpu if found is None else found
            raise
        finally:
            budget.cancel()
        sums = self.task_cpu.setdefault(getattr(fn, "__name__", "task"), [0.0, 0])
        sums[0] += cpu - worker.cpu
        sums[1] += 1
        worker.cpu = cpu
        return cast(T, result)

    @staticmethod
    def _cpu_of(worker: _Worker) -> float | None:
        pid = worker.pid()
        return _cpu_seconds(pid) if pid is not None else None

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` (when alive) and put a fresh one in its place, once it has started and warmed up (so that
        no task waits for a cold process while another worker is free)."""
        self.replaced += 1
        self._retire(worker)
        if self._idle is not None and not self._stopping:
            starting = asyncio.create_task(self._restaff())
            self._starting.add(starting)
            starting.add_done_callback(self._starting.discard)

    def _retire(self, worker: _Worker) -> None:
        self._all.discard(worker)
        worker.kill()
        reaping = asyncio.create_task(asyncio.to_thread(_end, worker))  # no zombie left behind
        self._reaping.add(reaping)
        reaping.add_done_callback(self._reaping.discard)

    async def _restaff(self) -> None:
        """Start a worker in place of a replaced one and give it tasks once it is ready. One that cannot start
        (no memory, no file descriptors) or is not ready within READY seconds is tried again, after a pause that
        doubles each time up to RESTART_MAX seconds, for as long as the pool runs: the pool never stays short
        (were every worker gone, every message would wait)."""
        pause = 0.5
        while not self._stopping:
            worker = None
            try:
                worker = self._new()
                worker.cpu = await asyncio.wait_for(worker.call((tasks.ready,), large=False), READY)
            except Exception:
                log.warning("a replacement worker did not start; trying again in %g s", pause, exc_info=True)
                if worker is not None:
                    self._retire(worker)
                await asyncio.sleep(pause)
                pause = min(2 * pause, RESTART_MAX)
                continue
            if self._idle is not None and not self._stopping:
                self._idle.put_nowait(worker)
            return


class _Budget:
    """Checks every POLL seconds, from the loop, whether a task still running is over its CPU budget; if so the
    task's future fails with BudgetExceeded (its worker is then replaced). The worker's CPU is read from
    outside only for a task still running after POLL: a read of /proc costs the loop more than the CPU of a
    small task, and a task that ends sooner reports its own (tasks.measured)."""

    def __init__(self, worker: _Worker, future: asyncio.Future[Any], name: str, seconds: float) -> None:
        self._worker, self._future, self._name, self._seconds = worker, future, name, seconds
        self._started = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(POLL, self._check)

    def _check(self) -> None:
        if self._future.done():
            return
        pid = self._worker.pid()
        now_cpu = _cpu_seconds(pid) if pid is not None else None
        used = now_cpu - self._worker.cpu if now_cpu is not None else time.monotonic() - self._started
        if used <= self._seconds:
            self._handle = self._loop.call_later(POLL, self._check)
            return
        log.warning("a %s task used %.1f s of CPU (budget %g s): worker %s replaced", self._name, used,
                    self._seconds, pid)
        self._future.set_exception(BudgetExceeded(self._seconds))

    def cancel(self) -> None:
        self._handle.cancel()


def _end(worker: _Worker, grace: float = 5.0) -> None:
    """Wait (in a thread) for a worker's process to exit once its pipe is closed; kill it after `grace` s."""
    worker.process.join(grace)
    if worker.process.is_alive():
        _kill(worker)
        worker.process.join(grace)
