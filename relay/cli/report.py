"""The `report` command of the CLI: a program's figures as text, JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from relay.cli.common import json_default, parse_now, with_store
from relay.clock import FixedClock, SystemClock
from relay.config import Settings
from relay.reports.figures import program_figures
from relay.reports.render import as_csv, as_text


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    settings.program(args.program)  # an unknown program is a config error naming the known ones
    now = parse_now(args.now)
    clock = FixedClock(now) if now is not None else SystemClock()

    async def work(engine: Any) -> dict[str, Any]:
        return await program_figures(engine, clock, args.program)

    figures = asyncio.run(with_store(settings, work))
    if args.json:
        print(json.dumps(figures, indent=2, default=json_default))
    elif args.csv:
        print(as_csv(figures), end="")
    else:
        print(as_text(figures))
    return 0


def register(commands: Any) -> None:
    report = commands.add_parser("report", help="a program's figures: pairs, messages, reply times, nudges, "
                                 "moderation, attempts")
    report.add_argument("--program", required=True)
    formats = report.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print JSON")
    formats.add_argument("--csv", action="store_true", help="print CSV (program, section, figure, value)")
    report.add_argument("--now", metavar="ISO8601", help="compute as if the clock read this time")
    report.set_defaults(func=cmd_report)
