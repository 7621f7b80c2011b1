"""The `person` commands of the CLI (one person's data rights): `person export --email E -o FILE.zip`
and `person erase --email E --yes` (relay/archive/person.py does the work)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from relay.archive import person
from relay.cli.common import CliError, actor, emit, listing, output_file, with_store
from relay.clock import SystemClock
from relay.config import Settings


def _address(text: str) -> str:
    value = text.strip()
    if "@" not in value or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError(f"expected an e-mail address, got {text!r}")
    return value


def cmd_person_export(args: argparse.Namespace, settings: Settings) -> int:
    target = output_file(args.output)

    async def work(engine: Any) -> person.Export:
        try:
            return await person.export_person(engine, args.email, target, domain=settings.relay.domain,
                                              now=SystemClock().now(), actor=actor())
        except person.PersonError as exc:
            raise CliError(str(exc)) from None

    done = asyncio.run(with_store(settings, work))
    counts = done.counts()
    emit(args, {"email": args.email, "file": str(target), **counts},
         f"wrote everything held about {args.email} to {target} (readable by you only): "
         f"{counts['enrolments']} enrolments, {counts['written']} messages written "
         f"({counts['written-as-delivered']} as delivered), {counts['to-you']} messages delivered to them, "
         f"{counts['events']} events")
    return 0


def _describe(done: person.Erasure) -> str:
    counts = done.erased.counts()
    text = (f"{len(done.person.member_ids)} enrolments (conversations {', '.join(map(str, done.person.pair_ids))}): "
            f"names and addresses, {counts['messages']} messages written, {counts['outbound']} copies and notices, "
            f"personal data in {counts['events_scrubbed']} events and {counts['held_scrubbed']} hold records, "
            f"{counts['edits_deleted']} moderators' edits")
    if done.closed:
        text += f"; open pairs closed: {', '.join(map(str, done.closed))}"
    if done.left:
        text += f"; leaves groups and communities: {', '.join(map(str, done.left))}"
    return text


def cmd_person_erase(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> person.Erasure:
        try:
            if not args.yes:
                return await person.preview_erasure(engine, args.email, SystemClock().now())
            return await person.erase_person(settings, engine, args.email, SystemClock().now(), actor())
        except person.PersonError as exc:
            raise CliError(str(exc)) from None

    done = asyncio.run(with_store(settings, work))
    if not args.yes:
        print(f"person erase: this would erase, for good, {_describe(done)}. Message rows stay as tombstones "
              f"and the archive still verifies. Nothing was changed: run again with --yes to erase.",
              file=sys.stderr)
        return 2
    emit(args, {"email": args.email, "erased": True, **done.as_dict()}, f"erased {args.email}: {_describe(done)}")
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("person").add_subparsers(dest="action", required=True, metavar="ACTION")
    out = listing(group.add_parser("export", help="everything the store holds about one person, as a zip (0600)"))
    out.add_argument("--email", required=True, type=_address, help="any of their addresses")
    out.add_argument("-o", "--output", required=True, metavar="FILE.zip")
    out.set_defaults(func=cmd_person_export)
    erase = listing(group.add_parser("erase", help="erase one person from the store (refused under legal hold)"))
    erase.add_argument("--email", required=True, type=_address, help="any of their addresses")
    erase.add_argument("--yes", action="store_true", help="erase for good (without it: say what would be erased)")
    erase.set_defaults(func=cmd_person_erase)
