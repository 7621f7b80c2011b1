"""`program end P [--reason TEXT] --yes`: end every open pair and group of a program, each with its farewell
(relay/endings.py). Without --yes it lists what would end and exits 2, ending nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from relay.cli.common import actor, emit, listing, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.endings import ProgramEnd, end_program, open_conversations


def _lines(found: ProgramEnd) -> list[str]:
    lines = [f"  pair {p.id}: {p.mentor.handle} (mentor) and {p.mentee.handle} (mentee)" for p in found.pairs]
    lines += [f"  group {g.id}: {g.name} ({len(g.members)} members)" for g in found.groups]
    return lines


def _data(found: ProgramEnd, **extra: Any) -> dict[str, Any]:
    return {"program": found.program_id, "pairs": [p.id for p in found.pairs],
            "groups": [g.id for g in found.groups], **extra}


def _counted(found: ProgramEnd) -> str:
    pairs, groups = len(found.pairs), len(found.groups)
    return f"{pairs} pair{'s' if pairs != 1 else ''} and {groups} group{'s' if groups != 1 else ''}"


def cmd_program_end(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes:
        found = asyncio.run(with_store(settings, lambda engine: open_conversations(settings, engine, args.program)))
        if found.empty:
            emit(args, _data(found, ended=False), f"program {args.program} has no open pairs or groups; "
                                                  f"nothing would end")
            return 0
        emit(args, _data(found, ended=False),
             "\n".join([f"program {args.program}: {_counted(found)} would end, each member with a farewell:",
                        *_lines(found)]))
        print(f"error: nothing was ended; to end them, run again with --yes: "
              f"mentor-relay program end {args.program} --yes", file=sys.stderr)
        return 2

    async def work(engine: Any) -> ProgramEnd:
        return await end_program(settings, engine, SystemClock(), args.program, args.reason, actor=actor())

    done = asyncio.run(with_store(settings, work))
    if done.empty:
        emit(args, _data(done, ended=True), f"program {args.program} has no open pairs or groups; nobody was "
                                            f"written to")
        return 0
    emit(args, _data(done, ended=True),
         "\n".join([f"program {args.program} ended: {_counted(done)} closed; every member was sent a farewell "
                    f"and the coordinator a summary", *_lines(done)]))
    return 0


def register(program: Any) -> None:
    """`program end` in the `program` command's subparsers (relay/cli/serve.register_program)."""
    end = listing(program.add_parser("end", help="end every open pair and group of a program, each with a "
                                     "farewell to its members (asks for --yes)"))
    end.add_argument("program", metavar="P", help="the program's id (see `program list`)")
    end.add_argument("--reason", metavar="TEXT", help="a short note for the farewells and the coordinator")
    end.add_argument("--yes", action="store_true", help="really end them (without it: list what would end)")
    end.set_defaults(func=cmd_program_end)
