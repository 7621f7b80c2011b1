"""`serve` (the relay itself), `check-config` (validate relay.yaml, programs, policies and the DKIM key:
relay/preflight.py, the checks serve makes before it starts) and `program list` (the programs of
programs_dir)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from relay.cli.common import emit, listing
from relay.config import Settings, console_warnings
from relay.demo import banner, enrol_demo_pair
from relay.preflight import preflight
from relay.service import serve
from relay.store.database import check_revision, create_engine


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
    problem = asyncio.run(store_problem(settings))  # a store of a newer version: StoreTooNew, exit 1
    if problem is not None:
        print(problem, file=sys.stderr)
    print(f"{settings.path}: OK ({len(settings.programs)} programs, domain {settings.relay.domain})")
    return 0


async def store_problem(settings: Settings) -> str | None:
    """`check-config`'s look at the store, which `serve` would migrate at its start: StoreTooNew when a newer
    version wrote it (systemd runs check-config before serve: the start stops there, with one line). A store
    that cannot be reached now (PostgreSQL not up yet) is a warning, returned; a SQLite file not made yet is
    left unmade (serve makes it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") and not Path(
            url.database).exists():
        return None
    engine = create_engine(settings.database_url)
    try:
        await check_revision(engine)
    except (SQLAlchemyError, OSError) as exc:
        return f"warning: the store could not be read ({str(exc).splitlines()[0]}); serve tries again at its start"
    finally:
        await engine.dispose()
    return None


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
