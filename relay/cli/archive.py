"""The `archive` commands of the CLI: verify, export, purge, hold and release-hold."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tqdm import tqdm

from relay.archive import export, hold
from relay.archive.retention import purge_expired
from relay.archive.verify import chain_length, verify
from relay.cli.common import CliError, actor, emit, instant, listing, output_file, positive_int, with_store
from relay.clock import FixedClock, SystemClock
from relay.config import Settings
from relay.store import events
from relay.store.conversations import get_conversation
from relay.store.database import transaction


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
    target = output_file(args.output)

    conversation_id = args.pair or args.group
    kind = "group" if args.group else "pair"

    async def work(engine: Any) -> int:
        async with engine.connect() as connection:
            found = await get_conversation(connection, conversation_id)
            if found is None or (args.group and not found.is_group):
                raise CliError(f"no {kind} with id {conversation_id}")
        items = await export.conversation(engine, conversation_id, original=args.original)
        export.write(items, target, args.format)
        async with transaction(engine) as connection:  # who took what out of the archive, and when
            await events.record(connection, "archive.export", SystemClock().now(), actor=actor(),
                                pair_id=conversation_id, original=args.original, format=args.format,
                                messages=len(items))
        return len(items)

    count = asyncio.run(with_store(settings, work))
    what = "messages as received" if args.original else "delivered copies (anonymised)"
    emit(args, {"pair": conversation_id, "file": str(target), "format": args.format, "original": args.original,
                "messages": count}, f"wrote {count} {what} of {kind} {conversation_id} to {target} ({args.format})")
    return 0


def cmd_archive_purge(args: argparse.Namespace, settings: Settings) -> int:
    clock = FixedClock(args.now) if args.now is not None else SystemClock()

    async def work(engine: Any) -> Any:
        return await purge_expired(engine, clock, settings, dry_run=args.dry_run)

    report = asyncio.run(with_store(settings, work))
    verb = "would purge" if args.dry_run else "purged"
    lines = [f"{verb} {e.kind} {e.pair_id} ({e.program}, {e.rule} ended {e.expired_at:%Y-%m-%d}): "
             f"{e.messages} messages, {e.outbound} outbound copies, {e.members_erased} members' names and "
             f"addresses, personal data in {e.events_scrubbed} events" for e in report.purged]
    lines += [f"kept {report.kinds.get(pair_id, 'pair')} {pair_id}: expired, but under legal hold"
              for pair_id in report.on_hold]
    emit(args, report.as_dict(), "\n".join(lines) or f"nothing to purge as of {report.now:%Y-%m-%d %H:%M} UTC")
    return 0


def _held_one(args: argparse.Namespace) -> tuple[int, str | None]:
    """The conversation `archive hold` / `release-hold` name: --pair ID (a pair's id; a group's or a
    community's is taken too, as by `archive export --pair`) or --group ID (a group's only)."""
    return (args.group, "group") if args.group else (args.pair, None)


def cmd_archive_hold(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise CliError("--reason must say why the record is held (it is kept in the record)")
    conversation_id, kind = _held_one(args)

    async def work(engine: Any) -> tuple[Any, bool]:
        try:
            return await hold.place(engine, SystemClock().now(), conversation_id, args.reason.strip(), actor(),
                                    kind=kind)
        except hold.HoldError as exc:
            raise CliError(str(exc)) from None

    conversation, placed = asyncio.run(with_store(settings, work))
    named = hold.what(conversation)
    emit(args, {"pair": conversation_id, "kind": conversation.kind, "held": True, "changed": placed},
         f"{named} is under legal hold: its record is not purged, and none of its members erased, until the "
         f"hold is released" if placed else f"{named} was already under legal hold; nothing changed")
    return 0


def cmd_archive_release_hold(args: argparse.Namespace, settings: Settings) -> int:
    conversation_id, kind = _held_one(args)

    async def work(engine: Any) -> Any:
        try:
            return await hold.release(engine, SystemClock().now(), conversation_id, actor(), kind=kind)
        except hold.HoldError as exc:
            raise CliError(str(exc)) from None

    conversation = asyncio.run(with_store(settings, work))
    emit(args, {"pair": conversation_id, "kind": conversation.kind, "held": False},
         f"{hold.what(conversation)}: legal hold released; retention applies again")
    return 0


def register(commands: Any) -> None:
    archive = commands.add_parser("archive").add_subparsers(dest="action", required=True, metavar="ACTION")
    check = listing(archive.add_parser("verify", help="walk the hash chain; exit 1 at the first entry that "
                                       "does not match"))
    check.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is no TTY")
    check.set_defaults(func=cmd_archive_verify)
    out = listing(archive.add_parser("export", help="a pair's or group's conversation as mbox or a zip of .eml files"))
    which = out.add_mutually_exclusive_group(required=True)
    which.add_argument("--pair", type=positive_int, help="a pair's id (a group's id is taken too)")
    which.add_argument("--group", type=positive_int, help="a group's id")
    out.add_argument("-o", "--output", required=True, metavar="FILE")
    out.add_argument("--format", choices=export.FORMATS, default="mbox")
    out.add_argument("--original", action="store_true",
                     help="the messages as received, real addresses included (admins only), instead of the "
                          "anonymised copies the participants saw")
    out.set_defaults(func=cmd_archive_export)
    purge = listing(archive.add_parser("purge", help="erase the record of closed and ended pairs whose "
                                       "retention is over: message bodies, names, addresses, contact details "
                                       "(tombstones and hashes stay)"))
    purge.add_argument("--now", type=instant, metavar="ISO8601", help="purge as if the clock read this time")
    purge.add_argument("--dry-run", action="store_true", help="only say what would be purged")
    purge.set_defaults(func=cmd_archive_purge)
    place = listing(archive.add_parser("hold", help="put a pair's or group's record under legal hold: nothing "
                                       "of it is purged and none of its members erased"))
    held_one(place)
    place.add_argument("--reason", required=True)
    place.set_defaults(func=cmd_archive_hold)
    lift = listing(archive.add_parser("release-hold", help="release a pair's or group's legal hold"))
    held_one(lift)
    lift.set_defaults(func=cmd_archive_release_hold)


def held_one(parser: Any) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pair", type=positive_int, help="a pair's id (a group's id is taken too)")
    which.add_argument("--group", type=positive_int, help="a group's id")
