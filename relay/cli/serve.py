"""`serve` (the relay itself), `check-config` (validate relay.yaml, programs, policies and the DKIM key:
relay/preflight.py, the checks serve makes before it starts) and `program list` (the programs of
programs_dir)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from relay.cli.common import emit, listing
from relay.config import Settings, console_warnings
from relay.demo import banner, enrol_demo_pair
from relay.preflight import preflight
from relay.service import serve


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    async def ready(relay: Any, running: Any) -> None:
        pair = await enrol_demo_pair(settings, relay.engine, relay.clock)
        if pair is not None:
            print(banner(settings, pair, running.smtp_host, running.smtp_port), flush=True)
        print(f"mentor-relay serving {settings.relay.domain} on {running.smtp_host}:{running.smtp_port} "
              f"(delivery: {settings.relay.delivery.transport}); stop with Ctrl-C", flush=True)
        if running.console_url:
            print(f"review console on {running.console_url}", flush=True)

    asyncio.run(serve(settings, on_ready=ready))
    return 0


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    preflight(settings)  # the same checks as serve's start: every problem as file:line, exit 1
    for warning in console_warnings(settings):  # not errors: the relay runs, but links or throttling suffer
        print(warning, file=sys.stderr)
    print(f"{settings.path}: OK ({len(settings.programs)} programs, domain {settings.relay.domain})")
    return 0


def cmd_program_list(args: argparse.Namespace, settings: Settings) -> int:
    programs = [p.model_dump(mode="json") for p in settings.programs.values()]
    lines = [f"{p['id']:<20} {p['name']:<40} policy={p['policy']} coordinator={p['coordinator']}" for p in programs]
    emit(args, programs, "\n".join(lines) or "no programs")
    return 0


def register(commands: Any) -> None:
    commands.add_parser("serve").set_defaults(func=cmd_serve)
    commands.add_parser("check-config").set_defaults(func=cmd_check_config)


def register_program(commands: Any) -> Any:
    """The `program` command with `list`; returns its subparsers (`program end`: relay/cli/programs.py)."""
    program = commands.add_parser("program").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    listing(program.add_parser("list", help="list programs")).set_defaults(func=cmd_program_list)
    return program
