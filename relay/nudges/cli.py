"""`mentor-relay nudges run [--now ISO8601] [--dry-run] [--json]`: one nudge sweep by hand."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from relay.clock import FixedClock, SystemClock
from relay.config import Settings
from relay.nudges import sweep


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time such as 2026-11-03T09:00:00+01:00, got {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def cmd_nudges_run(args: argparse.Namespace, settings: Settings) -> int:
    from relay.cli import emit, with_store

    clock = FixedClock(args.now) if args.now is not None else SystemClock()

    async def work(engine: Any) -> sweep.SweepResult:
        return await sweep.run(settings, engine, clock, dry_run=args.dry_run, queue_at=SystemClock().now())

    result = asyncio.run(with_store(settings, work))
    emit(args, result.as_dict(), "\n".join(result.lines()))
    return 0


def register(commands: Any, listing: Any) -> None:
    nudges = commands.add_parser("nudges", help="reminders, check-ins and escalations").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    run = listing(nudges.add_parser("run", help="one nudge sweep now (prints what it sent)"))
    run.add_argument("--now", type=_instant, metavar="ISO8601", help="sweep as if the clock read this time")
    run.add_argument("--dry-run", action="store_true", help="only print what would be sent")
    run.set_defaults(func=cmd_nudges_run)
