"""The `archive` commands of the CLI: verify, export, purge, hold and release-hold."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from relay.archive import export
from relay.archive.verify import chain_length, verify
from relay.cli import CliError, _positive_int, emit, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.reports.commands import register as register_report
from relay.store import events
from relay.store.database import transaction
from relay.store.pairs import get_pair


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def cmd_archive_verify(args: argparse.Namespace, settings: Settings) -> int:
    show = args.progress or sys.stderr.isatty()

    async def work(engine: Any) -> Any:
        total = await chain_length(engine)
        with tqdm(total=total, unit="entries", file=sys.stderr, disable=not show, desc="verifying") as bar:
            return await verify(engine, progress=bar.update)

    verdict = asyncio.run(with_store(settings, work))
    if verdict.ok:
        emit(args, verdict.as_dict(), f"archive intact: {verdict.entries} entries, head {verdict.head}")
        return 0
    assert verdict.problem is not None
    emit(args, verdict.as_dict(), f"archive NOT intact: {verdict.problem.describe()} "
                                  f"({verdict.entries} entries before it are intact)")
    return 1


def cmd_archive_export(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.output)
    if not target.resolve().parent.is_dir():
        raise CliError(f"cannot write {target}: no such folder {target.resolve().parent}")

    async def work(engine: Any) -> int:
        async with engine.connect() as connection:
            if await get_pair(connection, args.pair) is None:
                raise CliError(f"no pair with id {args.pair}")
        items = await export.conversation(engine, args.pair, original=args.original)
        export.write(items, target, args.format)
        async with transaction(engine) as connection:  # who took what out of the archive, and when
            await events.record(connection, "archive.export", SystemClock().now(), actor=_actor(),
                                pair_id=args.pair, original=args.original, format=args.format, messages=len(items))
        return len(items)

    count = asyncio.run(with_store(settings, work))
    what = "messages as received" if args.original else "delivered copies (anonymised)"
    emit(args, {"pair": args.pair, "file": str(target), "format": args.format, "original": args.original,
                "messages": count}, f"wrote {count} {what} of pair {args.pair} to {target} ({args.format})")
    return 0


def register(commands: Any, listing: Any) -> None:
    """The `archive` commands and `report` (one registration for the record's commands)."""
    register_report(commands, listing)
    archive = commands.add_parser("archive", help="the tamper-evident record: verify, export, retention, "
                                  "legal hold").add_subparsers(dest="action", required=True, metavar="ACTION")
    check = listing(archive.add_parser("verify", help="walk the hash chain; exit 1 at the first entry that "
                                       "does not match"))
    check.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is no TTY")
    check.set_defaults(func=cmd_archive_verify)
    out = listing(archive.add_parser("export", help="a pair's conversation as mbox or a zip of .eml files"))
    out.add_argument("--pair", type=_positive_int, required=True)
    out.add_argument("-o", "--output", required=True, metavar="FILE")
    out.add_argument("--format", choices=export.FORMATS, default="mbox")
    out.add_argument("--original", action="store_true",
                     help="the messages as received, real addresses included (admins only), instead of the "
                          "anonymised copies the participants saw")
    out.set_defaults(func=cmd_archive_export)

