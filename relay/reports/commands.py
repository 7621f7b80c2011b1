"""The `report` command of the CLI: a program's figures as text, JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from relay.cli import CliError, _json_default, with_store
from relay.clock import FixedClock, SystemClock
from relay.config import Settings
from relay.reports.figures import program_figures
from relay.reports.render import as_csv, as_text


def parse_now(text: str | None) -> datetime | None:
    """--now as an ISO 8601 time (UTC when it names no zone); None when not given."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--now: expected an ISO 8601 time such as 2026-06-30T12:00:00Z, got {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    settings.program(args.program)  # an unknown program is a config error naming the known ones
    now = parse_now(args.now)
    clock = FixedClock(now) if now is not None else SystemClock()

    async def work(engine: Any) -> dict[str, Any]:
        return await program_figures(engine, clock, args.program)

    figures = asyncio.run(with_store(settings, work))
    if args.json:
        print(json.dumps(figures, indent=2, default=_json_default))
    elif args.csv:
        print(as_csv(figures), end="")
    else:
        print(as_text(figures))
    return 0


def register(commands: Any, listing: Any) -> None:
    report = commands.add_parser("report", help="a program's figures: pairs, messages, reply times, nudges, "
                                 "moderation, attempts")
    report.add_argument("--program", required=True)
    formats = report.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print JSON")
    formats.add_argument("--csv", action="store_true", help="print CSV (program, section, figure, value)")
    report.add_argument("--now", metavar="ISO8601", help="compute as if the clock read this time")
    report.set_defaults(func=cmd_report)
