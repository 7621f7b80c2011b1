"""The `report` command of the CLI: a program's figures as text, JSON or CSV (JSON and CSV written as they
are made: relay/reports/render.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from relay.cli.common import instant, with_store
from relay.clock import FixedClock, SystemClock
from relay.config import Settings
from relay.reports.figures import program_figures
from relay.reports.render import as_text, write_csv, write_json


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    settings.program(args.program)  # an unknown program is a config error naming the known ones
    clock = FixedClock(args.now) if args.now is not None else SystemClock()

    async def work(engine: Any) -> dict[str, Any]:
        return await program_figures(engine, clock, args.program)

    figures = asyncio.run(with_store(settings, work))
    if args.json:
        write_json(figures, sys.stdout)
    elif args.csv:
        write_csv(figures, sys.stdout)
    else:
        print(as_text(figures))
    return 0


def register(commands: Any) -> None:
    report = commands.add_parser("report")
    report.add_argument("--program", required=True)
    formats = report.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print JSON")
    formats.add_argument("--csv", action="store_true", help="print CSV (program, section, figure, value)")
    report.add_argument("--now", type=instant, metavar="ISO8601", help="compute as if the clock read this time")
    report.set_defaults(func=cmd_report)
