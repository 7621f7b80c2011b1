"""`pair create | import | list | show | close`: enrol and manage pairs (away and resume:
relay/cli/nudges.py; several addresses per member: relay/cli/addresses.py)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from relay.cli.common import (
    CliError,
    actor,
    emit,
    emit_stream,
    language_tag,
    listing,
    pair_dict,
    positive_int,
    with_store,
)
from relay.clock import SystemClock
from relay.config import Settings
from relay.endings import close_pair
from relay.enrol import Person, create_pair
from relay.pair_import import BATCH, STDIN, ImportRefused, Outcome, import_pairs
from relay.store.events import list_events
from relay.store.messages import count_by_pair
from relay.store.pairs import Pair, get_pair, pairs_page

CHUNK = 500  # pairs read at a time by the listings


def cmd_pair_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> Pair:
        return await create_pair(
            settings, engine, SystemClock(), program_id=args.program, policy=args.policy, end_date=args.end_date,
            mentor=Person(args.mentor_email, args.mentor_name, args.mentor_handle, args.mentor_timezone,
                          tuple(args.mentor_nickname), args.mentor_language or args.language),
            mentee=Person(args.mentee_email, args.mentee_name, args.mentee_handle, args.mentee_timezone,
                          tuple(args.mentee_nickname), args.mentee_language or args.language),
            mentor_cadence=args.mentor_cadence,
        )

    pair = asyncio.run(with_store(settings, work))
    domain = settings.relay.domain
    data = {"id": pair.id, "mentor_alias": pair.mentor.alias_address(domain),
            "mentee_alias": pair.mentee.alias_address(domain)}
    emit(args, data, f"pair {pair.id}\nmentor alias: {data['mentor_alias']}\nmentee alias: {data['mentee_alias']}")
    return 0


def _source(file: str) -> tuple[Path | bytes, str]:
    """What `pair import` reads, and its name in FILE:LINE messages: `-` is standard input (`<stdin>`), read
    whole here (under Docker Compose the container cannot see the host's files: `docker compose exec -T relay
    mentor-relay pair import ... - < cohort.csv`); any other name is a file, a pipe or /dev/stdin."""
    if file == "-":
        return sys.stdin.buffer.read(), STDIN
    path = Path(file)
    if path.is_dir():
        raise CliError(f"{path}: is a folder; name the CSV file (or - to read it from standard input)")
    if not path.exists():
        raise CliError(f"{path}: no such file")
    return (path if path.is_file() else path.read_bytes()), file  # a pipe is read once, here


def _spans(lines: list[int]) -> str:
    """Line numbers as ranges: 2-101, 150."""
    spans: list[list[int]] = []
    for line in sorted(lines):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def _written(outcome: Outcome) -> str:
    """What an import that stopped part-way wrote, and what to do about the rest."""
    if not outcome.created:
        return "nothing was written"
    written = _spans([line for line, *_ in outcome.created])
    return (f"{len(outcome.created)} pairs were written before it stopped (lines {written}), {len(outcome.left)} "
            f"not; import the same file again to write the rest (the pairs written are skipped)")


def cmd_pair_import(args: argparse.Namespace, settings: Settings) -> int:
    source, name = _source(args.file)
    outcome = Outcome()
    interrupted: list[int] = []

    async def work(engine: Any) -> Outcome:
        # Ctrl-C or SIGTERM: the batch under way is committed (or rolled back) whole, and the import stops there
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)

        def interrupt(number: int) -> None:
            interrupted.append(number)
            stopping.set()

        for number in signals:
            loop.add_signal_handler(number, interrupt, number)

        async def between() -> bool:
            return not stopping.is_set()

        try:
            with tqdm(total=None, unit="pair", desc="writing", disable=not sys.stderr.isatty(), file=sys.stderr,
                      leave=False) as bar:
                return await import_pairs(settings, engine, args.program, source, SystemClock().now(),
                                          dry_run=args.dry_run, actor=actor(), name=name, progress=bar.update,
                                          batch=args.batch, outcome=outcome, between=between)
        finally:
            for number in signals:
                loop.remove_signal_handler(number)

    try:
        asyncio.run(with_store(settings, work))
    except ImportRefused as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        print(f"error: {len(exc.messages)} problem{'s' if len(exc.messages) != 1 else ''} in {name}; "
              f"{_written(outcome)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not outcome.created:
            raise
        # the store failed under a batch (say, busy for longer than a writer waits): that batch is rolled back
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(f"{first}; {_written(outcome)}") from exc
    lines = [f"{name}:{line}: skipped: pair {pair_id} with these two people exists already"
             for line, pair_id in outcome.skipped]
    if args.dry_run:
        lines.append(f"dry run: {len(outcome.planned)} pairs would be created, {len(outcome.skipped)} skipped; "
                     f"nothing was written")
        data: dict[str, Any] = {"created": len(outcome.planned), "skipped": len(outcome.skipped), "dry_run": True,
                                "pairs": [{"line": line, "id": None, "mentor_alias": None, "mentee_alias": None}
                                          for line in outcome.planned]}
    else:
        lines.extend(f"{name}:{line}: pair {pair_id}: mentor alias {mentor}, mentee alias {mentee}"
                     for line, pair_id, mentor, mentee in outcome.created)
        lines.append(f"created {len(outcome.created)} pairs, skipped {len(outcome.skipped)}")
        data = {"created": len(outcome.created), "skipped": len(outcome.skipped),
                "pairs": [{"line": line, "id": pair_id, "mentor_alias": mentor, "mentee_alias": mentee}
                          for line, pair_id, mentor, mentee in outcome.created]}
        if outcome.left:  # interrupted (Ctrl-C, SIGTERM) between two batches
            data.update(interrupted=True, left=outcome.left)
    emit(args, data, "\n".join(lines))
    if outcome.left:
        print(f"interrupted: {_written(outcome)}", file=sys.stderr)
        return 128 + (interrupted[0] if interrupted else signal.SIGINT)
    return 0


def cmd_pair_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every pair (of a program), streamed: read CHUNK pairs at a time by id (keyset), printed as they come."""
    if args.program is not None:
        settings.program(args.program)

    async def rows(connection: Any) -> AsyncIterator[dict[str, Any]]:
        after = 0
        while True:
            found, following = await pairs_page(connection, program_id=args.program, limit=CHUNK, after=after)
            counts = await count_by_pair(connection, [p.id for p in found])
            for pair in found:
                yield pair_dict(pair, settings.relay.domain, counts.get(pair.id, 0))
            if following is None:
                return
            after = following

    def line(p: dict[str, Any]) -> str:
        return (f"{p['id']:>5} {p['program']:<16} {p['status']:<7} {p['mentor']['handle']:<16} "
                f"{p['mentee']['handle']:<16} messages={p['messages']}")

    async def work(engine: Any) -> int:
        async with engine.connect() as connection:
            return await emit_stream(args, rows(connection), line, "no pairs")

    asyncio.run(with_store(settings, work))
    return 0


def cmd_pair_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> dict[str, Any]:
        async with engine.connect() as connection:
            pair = await get_pair(connection, args.id)
            if pair is None:
                raise CliError(f"no pair with id {args.id}")
            counts = await count_by_pair(connection, [pair.id])
            history = await list_events(connection, pair_id=pair.id)
        data = pair_dict(pair, settings.relay.domain, counts.get(pair.id, 0))
        data["events"] = [{"at": e["at"], "kind": e["kind"], "actor": e["actor"]} for e in history]
        return data

    data = asyncio.run(with_store(settings, work))
    text = [f"pair {data['id']} ({data['program']}, {data['status']}), {data['messages']} messages"]
    for role in ("mentor", "mentee"):
        m = data[role]
        text.append(f"  {role}: {m['handle']} = {m['name']} <{m['email']}>, alias {m['alias']}")
    text.extend(f"  {e['at']:%Y-%m-%d %H:%M} {e['kind']} by {e['actor']}" for e in data["events"][-20:])
    emit(args, data, "\n".join(text))
    return 0


def cmd_pair_close(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> bool:
        return await close_pair(settings, engine, SystemClock(), args.id, args.reason, actor=actor())

    closed = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "closed": True, "changed": closed},
         f"pair {args.id} closed: both members were sent a farewell and the coordinator was told" if closed
         else f"pair {args.id} was already closed; nobody was written to again")
    return 0


def register(commands: Any) -> Any:
    """The `pair` command and its actions; returns its subparsers, where other modules add theirs."""
    pair = commands.add_parser("pair").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = listing(pair.add_parser("create", help="enrol a mentor and a mentee"))
    create.add_argument("--program", required=True)
    for role in ("mentor", "mentee"):
        create.add_argument(f"--{role}-email", required=True)
        create.add_argument(f"--{role}-name", required=True)
        create.add_argument(f"--{role}-handle", required=True)
        create.add_argument(f"--{role}-timezone")
        create.add_argument(f"--{role}-language", metavar="LANG", type=language_tag,
                            help="BCP 47 tag (en, es, fr, ar, ru, es-MX, ...): the language of the notices they "
                                 "get; a regional form falls back to the language (es-MX: es)")
        create.add_argument(f"--{role}-nickname", action="append", default=[], metavar="NAME",
                            help="a name the person also goes by (repeatable); scrubbed like the real name")
    create.add_argument("--language", metavar="LANG", type=language_tag,
                        help="both members' language, where --mentor-language / --mentee-language say none")
    create.add_argument("--policy", help="override the program's policy for this pair")
    create.add_argument("--end-date", metavar="YYYY-MM-DD")
    create.add_argument("--mentor-cadence", metavar="DAYS", help="the mentor's writing days, e.g. mon,thu: "
                        "on those days they get a digest of what waits for them")
    create.set_defaults(func=cmd_pair_create)
    bulk = listing(pair.add_parser("import", help="enrol many pairs from a CSV file (a file with a bad row writes "
                                   "nothing)"))
    bulk.add_argument("--program", required=True)
    bulk.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV, or - to read it from standard input; columns: "
                      "see docs/operations.md")
    bulk.add_argument("--dry-run", action="store_true", help="check the whole file and write nothing")
    bulk.add_argument("--batch", type=positive_int, default=BATCH, metavar="N",
                      help=f"pairs written per transaction (default {BATCH}): a running relay waits for one batch "
                           f"at most")
    bulk.set_defaults(func=cmd_pair_import)
    pair_list = listing(pair.add_parser("list", help="list pairs"))
    pair_list.add_argument("--program")
    pair_list.set_defaults(func=cmd_pair_list)
    show = listing(pair.add_parser("show", help="one pair with its history"))
    show.add_argument("id", type=positive_int)
    show.set_defaults(func=cmd_pair_show)
    close = listing(pair.add_parser("close", help="end a pair's conversation: both members get a farewell, "
                                    "the coordinator is told"))
    close.add_argument("id", type=positive_int)
    close.add_argument("--reason", metavar="TEXT", help="a short note for the farewells and the coordinator "
                       "(the members read it: no names or addresses)")
    close.set_defaults(func=cmd_pair_close)
    return pair
