"""The sweeps inside `serve`, on one APScheduler AsyncIOScheduler: the hold-queue sweep every minute
and the nudge sweep every few minutes. A job never overlaps itself (max_instances=1) and missed runs
fold into one (coalesce); a failing run is logged and the next one tries again. Overlap with another
relay instance is harmless: every sweep sends each piece of mail once (relay/nudges/keys.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from relay.store.database import log_store_failure

log = logging.getLogger("relay.nudges")

Job = Callable[[], Awaitable[None]]


class Scheduler:
    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[None]] = set()

    def every(self, seconds: float, name: str, job: Job) -> None:
        """Run `job` now and then every `seconds` (after start)."""

        async def guarded() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)  # type: ignore[arg-type]
            try:
                await job()
            except Exception as exc:  # a failing sweep must not stop the relay; the next run tries again
                log_store_failure(log, exc, "scheduled job %s failed", name)
            finally:
                if task is not None:
                    self._running.discard(task)  # type: ignore[arg-type]

        self._scheduler.add_job(guarded, IntervalTrigger(seconds=seconds, timezone=UTC), id=name, name=name,
                                max_instances=1, coalesce=True, misfire_grace_time=None,
                                next_run_time=datetime.now(UTC))

    def job_names(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self) -> None:
        """No new runs; runs under way finish (their transactions commit or roll back whole), and only then
        is the scheduler shut down (APScheduler's shutdown cancels the coroutine jobs still running)."""
        if self._scheduler.running:
            self._scheduler.pause()
        if self._running:
            await asyncio.wait(list(self._running), timeout=60)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
