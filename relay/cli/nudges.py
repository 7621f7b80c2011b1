"""The commands of relay/nudges and of away mode: `nudges run [--now ISO8601] [--dry-run]` (one sweep
by hand), `pair away ID --role R --until YYYY-MM-DD | --back` and `pair resume ID`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from typing import Any

from relay.cli.common import CliError, actor, emit, instant, listing, positive_int, with_store
from relay.clock import FixedClock, SystemClock
from relay.config import Settings
from relay.digests import sweep as digest_sweep
from relay.inbound.program import away, help
from relay.nudges import sweep
from relay.store.database import transaction
from relay.store.pairs import Pair, get_pair


def cmd_nudges_run(args: argparse.Namespace, settings: Settings) -> int:
    clock = FixedClock(args.now) if args.now is not None else SystemClock()

    async def work(engine: Any) -> tuple[sweep.SweepResult, digest_sweep.DigestResult | None]:
        result = await sweep.run(settings, engine, clock, dry_run=args.dry_run, queue_at=SystemClock().now())
        digests = None if args.dry_run else await digest_sweep.run(settings, engine, clock,
                                                                   queue_at=SystemClock().now())
        return result, digests

    result, digests = asyncio.run(with_store(settings, work))
    data = result.as_dict()
    lines = result.lines()
    if digests is not None:  # the digest sweep (relay/digests/sweep.py) runs with the nudges
        data["digests"] = digests.as_dict()
        lines += [line for line in digests.lines() if not line.startswith("no digest due")]
    emit(args, data, "\n".join(lines))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2026-12-03, got {text!r}") from None


async def _open_pair(connection: Any, pair_id: int) -> Pair:
    """The pair a coordinator's command is about; a missing or closed pair is a one-line CLI error."""
    pair = await get_pair(connection, pair_id)
    if pair is None:
        raise CliError(f"no pair with id {pair_id}")
    if pair.status == "closed":
        raise CliError(f"pair {pair_id} is closed")
    return pair


def cmd_pair_away(args: argparse.Namespace, settings: Settings) -> int:
    request = away.Request(None if args.back else args.until)

    async def work(engine: Any) -> None:
        now = SystemClock().now()
        async with transaction(engine) as connection:
            pair = await _open_pair(connection, args.id)
            await away.apply(connection, settings, pair, pair.member(args.role), request, now,
                             actor=actor())

    try:
        asyncio.run(with_store(settings, work))
    except away.AwayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    until = request.until.isoformat() if request.until else None
    text = f"pair {args.id}: the {args.role} is " + (f"away until {until}" if until else "back")
    emit(args, {"id": args.id, "role": args.role, "away_until": until}, text)
    return 0


def cmd_pair_resume(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> bool:
        async with transaction(engine) as connection:
            await _open_pair(connection, args.id)
            return await help.resume(connection, args.id, SystemClock().now(), actor())

    resumed = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "status": "active", "changed": resumed},
         f"pair {args.id} resumed: mail is delivered again (mail held meanwhile waits in `held list`)" if resumed
         else f"pair {args.id} was not paused")
    return 0


def register_pair(pair: Any) -> None:
    """The actions of `pair` about away mode and a paused pair."""
    away_cmd = listing(pair.add_parser("away", help="mark a member away until a date (the partner is told)"))
    away_cmd.add_argument("id", type=positive_int)
    away_cmd.add_argument("--role", choices=["mentor", "mentee"], required=True)
    when = away_cmd.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="the last day away")
    when.add_argument("--back", action="store_true", help="the member is back")
    away_cmd.set_defaults(func=cmd_pair_away)
    resume = listing(pair.add_parser("resume", help="deliver a pair's mail again after a concern paused it"))
    resume.add_argument("id", type=positive_int)
    resume.set_defaults(func=cmd_pair_resume)


def register(commands: Any) -> None:
    nudges = commands.add_parser("nudges").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    run = listing(nudges.add_parser("run", help="one nudge sweep now (prints what it sent)"))
    run.add_argument("--now", type=instant, metavar="ISO8601", help="sweep as if the clock read this time")
    run.add_argument("--dry-run", action="store_true", help="only print what would be sent")
    run.set_defaults(func=cmd_nudges_run)
