"""Prometheus metrics: the text exposition that the console serves at /metrics.

Figures come from the store at each scrape, so every relay instance sharing a database reports the
same totals: messages accepted (by decision) and refused (by reason), the outbound queue by state,
delivery latency (queued to sent, as a histogram), the hold queue's size and oldest age, nudges sent
(by kind). Sweep durations are measured in this process (`sweep_timer`) and reported as a summary, and so
is whether the smarthost could be reached at delivery's last try (`SMARTHOST`).
`exposition(engine, clock)` returns the body; serve it with CONTENT_TYPE.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from sqlalchemy import JSON, Float, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.clock import Clock
from relay.store.schema import events, held, messages, outbound

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the classic text format: every Prometheus reads it
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


@dataclass
class _SweepTimes:
    runs: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (count, total seconds)

    def add(self, name: str, seconds: float) -> None:
        count, total = self.runs.get(name, (0, 0.0))
        self.runs[name] = (count + 1, total + seconds)


SWEEPS = _SweepTimes()


@dataclass
class _Smarthost:
    """This process's delivery worker and the smarthost (relay/delivery/worker.py): whether its last try
    could not reach it (delivery is paused meanwhile), and how many times that happened."""

    unreachable: bool = False
    pauses: int = 0


SMARTHOST = _Smarthost()


@contextmanager
def sweep_timer(name: str) -> Iterator[None]:
    """Time one run of a periodic sweep (hold queue, nudges, retention) for the sweep-duration summary."""
    started = time.monotonic()
    try:
        yield
    finally:
        SWEEPS.add(name, time.monotonic() - started)


def _reason(connection: AsyncConnection) -> Any:
    if connection.dialect.name == "postgresql":
        return func.json_extract_path_text(cast(events.c.detail, JSON), "reason")
    return func.json_extract(events.c.detail, "$.reason")


def _latency(connection: AsyncConnection) -> Any:
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", outbound.c.sent_at - outbound.c.created_at)
    return (func.julianday(outbound.c.sent_at) - func.julianday(outbound.c.created_at)) * 86400.0


async def _families(connection: AsyncConnection, clock: Clock) -> list[Metric]:
    accepted = CounterMetricFamily("mentor_relay_messages_accepted", "Messages accepted and archived, by decision",
                                   labels=["decision"])
    for decision, count in (await connection.execute(
            select(messages.c.decision, func.count()).group_by(messages.c.decision))).all():
        accepted.add_metric([decision], count)
    refused = CounterMetricFamily("mentor_relay_messages_refused", "SMTP refusals recorded, by reason",
                                  labels=["reason"])
    reason = _reason(connection)
    for name, count in (await connection.execute(
            select(reason, func.count()).where(events.c.kind == "refused").group_by(reason))).all():
        refused.add_metric([str(name)], count)
    queue = GaugeMetricFamily("mentor_relay_queue_depth", "Outbound entries by state (queued: waiting to be sent)",
                              labels=["state"])
    states: dict[str, int] = {state: count for state, count in (await connection.execute(
        select(outbound.c.state, func.count()).group_by(outbound.c.state))).all()}
    for state in sorted({"queued", *states}):
        queue.add_metric([state], states.get(state, 0))

    latency = cast(_latency(connection), Float)
    buckets = [func.sum(case((latency <= bound, 1), else_=0)) for bound in LATENCY_BUCKETS]
    row = (await connection.execute(select(func.count(), func.coalesce(func.sum(latency), 0.0), *buckets)
                                    .where(outbound.c.sent_at.is_not(None)))).one()
    count, total, *cumulative = row
    histogram = HistogramMetricFamily("mentor_relay_delivery_latency_seconds",
                                      "Time from queueing to the smarthost's acceptance")
    histogram.add_metric([], [(str(bound), int(value or 0)) for bound, value in zip(LATENCY_BUCKETS, cumulative,
                                                                                     strict=True)]
                         + [("+Inf", int(count))], float(total or 0.0))

    waiting, oldest = (await connection.execute(
        select(func.count(), func.min(held.c.held_at)).where(held.c.state == "held"))).one()
    held_size = GaugeMetricFamily("mentor_relay_held_queue_size", "Messages waiting for a moderator")
    held_size.add_metric([], waiting)
    held_age = GaugeMetricFamily("mentor_relay_held_oldest_age_seconds",
                                 "Age of the oldest message waiting for a moderator (0: none waiting)")
    age = 0.0 if oldest is None else (clock.now() - _utc(oldest)).total_seconds()
    held_age.add_metric([], max(0.0, age))

    nudges = CounterMetricFamily("mentor_relay_nudges_sent", "Nudges sent, by kind", labels=["kind"])
    for kind, count in (await connection.execute(select(events.c.kind, func.count())
                                                 .where(events.c.kind.startswith("nudge.")).group_by(events.c.kind))):
        nudges.add_metric([kind], count)

    sweeps = SummaryMetricFamily("mentor_relay_sweep_duration_seconds", "Duration of periodic sweeps in this process",
                                 labels=["sweep"])
    for name, (runs, seconds) in sorted(SWEEPS.runs.items()):
        sweeps.add_metric([name], runs, seconds)
    unreachable = GaugeMetricFamily("mentor_relay_smarthost_unreachable",
                                    "1 while this process's last try could not reach the smarthost (delivery "
                                    "paused, the queue kept), else 0")
    unreachable.add_metric([], 1.0 if SMARTHOST.unreachable else 0.0)
    pauses = CounterMetricFamily("mentor_relay_delivery_pauses",
                                 "Times this process paused delivery because the smarthost could not be reached")
    pauses.add_metric([], SMARTHOST.pauses)
    return [accepted, refused, queue, histogram, held_size, held_age, nudges, sweeps, unreachable, pauses]


def _utc(value: Any) -> datetime:
    """An aggregate's time (min() bypasses the column type: SQLite hands back text, naive UTC)."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class _Snapshot:
    """A collector that yields metric families computed beforehand (the store is read asynchronously)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def exposition(engine: AsyncEngine, clock: Clock) -> bytes:
    """The Prometheus text exposition of the relay's metrics, read from the store now."""
    async with engine.connect() as connection:
        families = await _families(connection, clock)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)
