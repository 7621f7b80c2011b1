"""`held list | show | release | reject`: the hold queue on the command line (the decisions are
relay/holdqueue/actions.py's, shared with the console)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import Any

from relay.cli.common import CliError, emit, emit_stream, listing, paged, pages, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.holdqueue import actions as review
from relay.holdqueue import parties
from relay.safeguarding.approvals import CliActor
from relay.store import held as held_store
from relay.store.events import list_events
from relay.store.schema import STOPPED


def cmd_held_list(args: argparse.Namespace, settings: Settings) -> int:
    """Held messages, oldest first, read a page at a time (keyset: held_at, message id) and printed as they
    come; --limit and --after page through them."""
    if args.program is not None:
        settings.program(args.program)
    state = None if args.state == "all" else args.state

    def line(i: dict[str, Any]) -> str:
        return (f"{i['id']} {_where(i)} {i['state']}{' URGENT' if i['severity'] == 'urgent' else ''} "
                f"{i['held_at']:%Y-%m-%d %H:%M} {_between(i)} \"{i['subject'] or ''}\" "
                + "; ".join(f"{r['rule']}: {r['match']}" for r in i["reasons"]))

    async def work(engine: Any) -> int:
        async with engine.connect() as connection:
            async def read(limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
                found, following = await held_store.list_held_page(connection, state=state, program_id=args.program,
                                                                   limit=limit, after=after)
                return await parties.summaries(connection, found), following

            return await emit_stream(args, pages(args, read), line, "no held messages")

    asyncio.run(with_store(settings, work))
    return 0


def cmd_held_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> dict[str, Any]:
        async with engine.connect() as connection:
            item = await held_store.get_held(connection, args.id)
            if item is None:
                raise CliError(f"no held message with id {args.id}")
            history = await list_events(connection, message_id=args.id)
            (data,) = await parties.summaries(connection, [item])
        data["events"] = [{"at": e["at"], "kind": e["kind"], "actor": e["actor"], "detail": e["detail"]}
                          for e in history]
        return data

    data = asyncio.run(with_store(settings, work))
    conversation = data["conversation"]
    text = [f"{data['id']} ({data['state']}{', URGENT' if data['severity'] == 'urgent' else ''}) "
            f"{_where(data)}, program {data['program']}, policy {data['policy']}",
            f"from {_between(data)}",
            "members: " + ", ".join(f"{m['handle']} ({m['role']})" for m in conversation["members"]),
            *([f"the {conversation['kind']} is {conversation['status']}: a release is refused"]
              if data["state"] == "held" and conversation["status"] in STOPPED else []),
            f"subject: {data['subject']}", f"held at: {data['held_at']:%Y-%m-%d %H:%M}",
            f"release needs {data['release_requires']} moderator(s); "
            f"approvals: {', '.join(data['approvals']) or 'none'}",
            "reasons:"]
    text.extend(f"  {r['rule']} ({r['kind']}, {r['action']}): {r['match']}" for r in data["reasons"])
    text.extend(f"  {e['at']:%Y-%m-%d %H:%M} {e['kind']} by {e['actor']}" for e in data["events"])
    emit(args, data, "\n".join(text))
    return 0


def _where(item: dict[str, Any]) -> str:
    """"pair=3", or "group=7 (Robotics)": the conversation of a held item."""
    conversation = item["conversation"]
    if conversation["kind"] == "pair":
        return f"pair={item['pair_id']}"
    return f"{conversation['kind']}={item['pair_id']} ({conversation['name']})"


def _between(item: dict[str, Any]) -> str:
    """"Maple -> Oak", "Maple -> the group": sender and addressee by handle."""
    recipient = item["recipient"]
    to = recipient["handle"] if recipient else f"the {item['conversation']['kind']}"
    return f"{item['sender']['handle']} -> {to}"


def _moderator(args: argparse.Namespace) -> CliActor:
    """Who decides from the command line: a named existing console account, or the login name (see
    relay.safeguarding.approvals for what each may do)."""
    return CliActor(account=args.moderator, login=getpass.getuser())


async def _decide(work: Callable[[], Awaitable[review.Outcome]]) -> review.Outcome:
    try:
        return await work()
    except review.ReviewError as exc:
        raise CliError(str(exc)) from None


def cmd_held_release(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> review.Outcome:
        return await _decide(lambda: review.release(settings, engine, SystemClock(), args.id, _moderator(args)))

    outcome = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "status": outcome.status, "approvals": outcome.approvals, "needed": outcome.needed},
         outcome.describe(args.id))
    return 0


def cmd_held_reject(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise CliError("--reason must say why (the sender is told)")

    async def work(engine: Any) -> review.Outcome:
        return await _decide(lambda: review.reject(settings, engine, SystemClock(), args.id, _moderator(args),
                                                   args.reason.strip()))

    outcome = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "status": outcome.status}, outcome.describe(args.id))
    return 0


def register(commands: Any) -> None:
    held = commands.add_parser("held").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    held_list = paged(listing(held.add_parser("list", help="held messages, oldest first")), "held messages")
    held_list.add_argument("--program")
    held_list.add_argument("--state", choices=["held", "released", "rejected", "all"], default="held")
    held_list.set_defaults(func=cmd_held_list)
    held_show = listing(held.add_parser("show", help="one held message with its reasons and history"))
    held_show.add_argument("id")
    held_show.set_defaults(func=cmd_held_show)
    held_release = listing(held.add_parser("release", help="release a held message (delivered once)"))
    held_release.add_argument("id")
    held_release.add_argument("--moderator", help="the existing console account you approve as (default: "
                              "cli:<login name>, only for a message that needs one moderator); the command line gives "
                              "one approval of a message at most")
    held_release.set_defaults(func=cmd_held_release)
    held_reject = listing(held.add_parser("reject", help="reject a held message; the sender gets the reason"))
    held_reject.add_argument("id")
    held_reject.add_argument("--reason", required=True)
    held_reject.add_argument("--moderator", help="the existing console account you decide as (default: "
                             "cli:<login name>)")
    held_reject.set_defaults(func=cmd_held_reject)
