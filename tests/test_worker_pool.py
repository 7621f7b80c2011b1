"""The worker pool itself (relay/workers/pool.py), with real worker processes: what happens at its edges — a
stop while tasks wait, a task bigger than a pipe holds, a worker that cannot be started again, a task that
raises SystemExit. The relay's own use of it (budgets, killed workers, lanes) is in tests/test_engine.py."""

from __future__ import annotations

import asyncio
import operator
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator

import pytest

from relay.config import load_settings
from relay.moderation.policy import PolicyBook
from relay.workers.pool import LARGE, ON_LOOP, Pool, WorkerLost
from tests.support import Layout, eventually


@pytest.fixture
async def pool(layout: Layout) -> AsyncIterator[Pool]:
    """A started pool of one worker process."""
    layout.overrides.update(workers=1, limits={"message_cpu_seconds": 5})
    layout.write()
    settings = load_settings(layout.config)
    started = Pool(settings, PolicyBook(settings.policies_dir), None)
    await started.start()
    yield started
    await started.stop()


async def test_a_stop_fails_the_tasks_waiting_for_a_worker_at_once_and_every_later_one(pool: Pool) -> None:
    running = asyncio.create_task(pool.run(time.sleep, 0.5))  # holds the only worker
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(pool.run(operator.add, b"a", b"b"))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(pool.stop(), 20)
    await running  # the task under way was let finish, not failed
    with pytest.raises(WorkerLost, match="stopping"):
        await asyncio.wait_for(waiting, 5)  # not left waiting for a worker that never comes
    with pytest.raises(WorkerLost, match="stopping"):
        await asyncio.wait_for(pool.run(operator.add, b"a", b"b"), 5)


async def test_a_task_bigger_than_its_pipe_holds_does_not_hold_the_event_loop(pool: Pool) -> None:
    """Under LARGE bytes a task is small (no lane of its own), but a write of more than the pipe holds waits
    for the worker to read: on the loop, it would stall every session for as long as the worker is not
    scheduled (here: stopped for a second)."""
    # two halves (not one object twice: pickle would send it once): less than LARGE, more than a pipe holds
    first, second = b"x" * (LARGE // 2 - 8 * 1024), b"y" * (LARGE // 2 - 8 * 1024)
    assert len(first + second) > ON_LOOP
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    (worker,) = pool.pids()
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    waking = threading.Timer(1.0, os.kill, (worker, signal.SIGCONT))  # a thread: the loop may be the one stuck
    try:
        os.kill(worker, signal.SIGSTOP)
        waking.start()
        assert await asyncio.wait_for(pool.run(operator.add, first, second), 20) == first + second
    finally:
        waking.join()
        ticker.cancel()
    assert max(gaps) < 0.5, f"the loop stood still for {max(gaps):.2f} s"


async def test_a_worker_that_cannot_be_started_again_is_tried_until_it_can(pool: Pool) -> None:
    """A worker killed under a task is replaced; when the replacement cannot start (no file descriptors
    left, as when the machine is short of them), the pool tries again until it can, and is not left empty."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    task = asyncio.create_task(pool.run(time.sleep, 5))
    await asyncio.sleep(0.2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 1, hard))
    try:
        task.cancel()  # its worker is killed and a replacement started: it fails for want of descriptors
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        assert pool.pids() == []
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    await eventually(lambda: len(pool.pids()) == 1, timeout=20)
    assert await asyncio.wait_for(pool.run(operator.add, b"a", b"b"), 20) == b"ab"


@pytest.mark.parametrize("argument", [3, b"x" * (LARGE + 1)], ids=["small", "large"])
async def test_a_task_raising_system_exit_is_an_error_for_its_caller_only(pool: Pool, argument: object) -> None:
    with pytest.raises(RuntimeError, match="SystemExit"):
        await asyncio.wait_for(pool.run(sys.exit, argument), 20)
    assert await asyncio.wait_for(pool.run(operator.add, b"a", b"b"), 20) == b"ab"
    assert pool.replaced == 0


async def test_an_answer_larger_than_its_task_comes_back_whole_beside_small_ones(pool: Pool) -> None:
    """A group's copies make an answer much larger than its task: it is read in a thread (its length is in the
    pipe before the rest), and small tasks' answers, read on the loop, come back as ever."""
    big, small = await asyncio.gather(pool.run(bytes, 3 * 1024 * 1024), pool.run(operator.add, b"a", b"b"))
    assert big == bytes(3 * 1024 * 1024) and small == b"ab"
    assert await asyncio.wait_for(pool.run(bytes.__add__, b"x" * (ON_LOOP + 1), b""), 20) == b"x" * (ON_LOOP + 1)
