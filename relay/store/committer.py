"""Group commit: concurrent writers share one transaction and one fsync.

Callers hand a write job (an async function of a connection) to `Committer.run`; a single writer task
takes every job waiting at that moment, runs them in one transaction, commits, then answers each
caller. Jobs of the same kind can be merged (`Merged`): the accepted messages of one batch are
written with one statement per table instead of one per message. The writer owns the transaction,
so a caller that is cancelled (aiosmtpd cancels the DATA handler when the client disconnects) can
never leave a commit half-done: the job still commits, and the client's retry is recognised as a
duplicate. If a batch fails, its jobs are retried one by one so that one bad job cannot fail its
neighbours; not when the store stayed busy (another process held its write lock past WRITER_WAIT): that fails
every job alike, and each retried alone would wait as long again.

Urgent jobs (`run(job, urgent=True)`: the delivery worker's results) have their own lane. Before
each batch the writer looks at that lane first and commits what is there in a transaction of its
own, so a "sent" mark waits at most for the one transaction already under way, never behind a queue
of intake work: a crash then re-sends only what was truly in flight (see tests/test_crash.py).
Several results waiting at once still share that one transaction and fsync.

Large jobs (`run(job, large=True)`: a large message's archive row and queue entry, tens of MB to write) have a
lane too: each is committed in a transaction of its own, never in a batch of small jobs, and the writer
alternates between them and the small jobs' batches. A small message's commit then waits for at most one
large write (the one under way), not for a batch that carries several of them, and large messages still
progress while small ones keep coming.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.store.database import store_busy, transaction
from relay.store.threaded import ThreadedWriter

T = TypeVar("T")


@dataclass(frozen=True)
class Merged:
    """A write that can share its statements with others of its kind: `run_many(connection, items)`
    is called once per batch with the items of every such job, and returns one result per item."""

    run_many: Callable[[AsyncConnection, list[Any]], Awaitable[list[Any]]]
    item: Any


Job = Callable[[AsyncConnection], Awaitable[Any]] | Merged

log = logging.getLogger(__name__)


class CommitterClosed(RuntimeError):
    """The committer was stopped; no new writes are taken."""


class Committer:
    def __init__(self, engine: AsyncEngine, max_batch: int = 256) -> None:
        self._engine = engine
        # SQLite file stores: each transaction runs whole in a thread of its own (relay/store/threaded.py)
        self._thread = ThreadedWriter.for_engine(engine)
        self._max_batch = max_batch
        self._normal: deque[tuple[Job, asyncio.Future[Any]]] = deque()
        self._urgent: deque[tuple[Job, asyncio.Future[Any]]] = deque()
        self._large: deque[tuple[Job, asyncio.Future[Any]]] = deque()
        self._large_next = False  # the last transaction was a batch of small jobs: a large one may go next
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.jobs = 0
        self.urgent_batches = 0

    @property
    def thread_engine(self) -> Engine | None:
        """The sync engine of the writer's thread (None where transactions run on the loop: PostgreSQL)."""
        return self._thread.sync_engine if self._thread is not None else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._writer(), name="group-committer")

    async def run(self, job: Callable[[AsyncConnection], Awaitable[T]] | Merged, *, urgent: bool = False,
                  large: bool = False) -> T:
        """Run `job` in the next group transaction (the next urgent one if `urgent`; one of its own if `large`);
        returns its result once committed."""
        return await self.submit(job, urgent=urgent, large=large)

    def submit(self, job: Callable[[AsyncConnection], Awaitable[T]] | Merged, *, urgent: bool = False,
               large: bool = False) -> asyncio.Future[T]:
        """Hand `job` over without waiting: the future is answered once it is committed. For records
        whose caller need not wait (refusal events), so that many of them share one fsync."""
        if self._closed:
            raise CommitterClosed("the store is shutting down")
        if self._task is None:
            self.start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._large if large else self._normal).append((job, future))
        self._ready.set()
        return future

    async def close(self) -> None:
        """Commit everything already handed over, then stop."""
        self._closed = True
        self._ready.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.close)
            self._thread = None
        if self.batches:
            log.info("group commit: %d writes in %d transactions (%.1f per commit; %d urgent transactions)",
                     self.jobs, self.batches, self.jobs / self.batches, self.urgent_batches)

    async def _writer(self) -> None:
        while True:
            if self._urgent:
                lane, size = self._urgent, self._max_batch
            elif self._large and (self._large_next or not self._normal):
                lane, size = self._large, 1
            else:
                lane, size = self._normal, self._max_batch
            if not lane:
                if self._closed:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = [lane.popleft() for _ in range(min(len(lane), size))]
            if lane is self._urgent:
                self.urgent_batches += 1
            else:
                self._large_next = lane is self._normal
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        jobs = [job for job, _ in batch]
        try:
            if self._thread is not None:
                results = await self._thread.transaction(lambda connection: _run_jobs(connection, jobs))
            else:
                async with transaction(self._engine) as connection:
                    results = await _run_jobs(connection, jobs)
        except Exception as exc:  # one failing job must not fail the others: retry them alone
            if len(batch) == 1 or store_busy(exc):  # a busy store fails them all alike: retried alone, each
                for _, future in batch:               # would wait as long again
                    _answer(future, error=exc)
                return
            log.warning("group commit of %d jobs failed (%s); retrying them one by one", len(batch), exc)
            for entry in batch:
                await self._commit([entry])
            return
        self.batches += 1
        self.jobs += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _answer(future, result=result)


async def _run_jobs(connection: AsyncConnection, jobs: list[Job]) -> list[Any]:
    """Run plain jobs in order and each kind of merged job once; results in the jobs' order."""
    results: list[Any] = [None] * len(jobs)
    merged: dict[Any, list[tuple[int, Merged]]] = {}
    for index, job in enumerate(jobs):
        if isinstance(job, Merged):
            merged.setdefault(job.run_many, []).append((index, job))
        else:
            results[index] = await job(connection)
    for run_many, group in merged.items():
        outcomes = await run_many(connection, [job.item for _, job in group])
        for (index, _), result in zip(group, outcomes, strict=True):
            results[index] = result
    return results


def _answer(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the caller went away (cancelled); the work is committed regardless
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
