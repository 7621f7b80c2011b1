"""The `archive` commands of the CLI: verify, export, purge, hold and release-hold."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tqdm import tqdm

from relay.archive.verify import chain_length, verify
from relay.cli import CliError, emit, with_store
from relay.config import Settings


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


def register(commands: Any, listing: Any) -> None:
    archive = commands.add_parser("archive", help="the tamper-evident record: verify, export, retention, "
                                  "legal hold").add_subparsers(dest="action", required=True, metavar="ACTION")
    check = listing(archive.add_parser("verify", help="walk the hash chain; exit 1 at the first entry that "
                                       "does not match"))
    check.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is no TTY")
    check.set_defaults(func=cmd_archive_verify)


__all__ = ["CliError", "register"]
