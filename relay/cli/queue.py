"""`queue list` (the outbound delivery queue) and `events list` (the record of decisions)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from relay.cli.common import emit_stream, listing, paged, pages, positive_int, with_store
from relay.config import Settings
from relay.store.events import iter_events
from relay.store.outbound import outbound_page


def cmd_queue_list(args: argparse.Namespace, settings: Settings) -> int:
    """Outbound entries, oldest first, read a page at a time (keyset: created_at, id) and printed as they
    come; --limit (1000 unless given) and --after page through them."""
    def line(e: dict[str, Any]) -> str:
        return (f"{e['id']} message={e['message_id']} pair={e['pair_id']} {e['state']} attempts={e['attempts']}"
                + (f" error={e['last_error']}" if e["last_error"] else ""))

    async def work(engine: Any) -> int:
        async with engine.connect() as connection:
            async def read(limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
                found, following = await outbound_page(connection, state=args.state, limit=limit, after=after)
                return [dict(row._mapping) for row in found], following

            return await emit_stream(args, pages(args, read), line, "queue empty")

    asyncio.run(with_store(settings, work))
    return 0


def cmd_events_list(args: argparse.Namespace, settings: Settings) -> int:
    """The record, streamed: events read a thousand at a time (keyset on id) and printed as they come."""
    def line(e: dict[str, Any]) -> str:
        return (f"{e['at']:%Y-%m-%d %H:%M:%S} {e['kind']:<16} {e['actor']:<10} pair={e['pair_id']} "
                f"message={e['message_id']} {json.dumps(e['detail'], ensure_ascii=False)}")

    async def work(engine: Any) -> int:
        async with engine.connect() as connection:
            found = iter_events(connection, kind=args.kind, pair_id=args.pair, limit=args.limit)
            return await emit_stream(args, found, line, "no events")

    asyncio.run(with_store(settings, work))
    return 0


STATES = ["queued", "sent", "failed", "bounced", "digest", "digested", "withheld"]


def register(commands: Any) -> None:
    queue = commands.add_parser("queue").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    queue_list = paged(listing(queue.add_parser("list", help="list outbound entries, oldest first")), "entries",
                       default=1000)
    queue_list.add_argument("--state", choices=STATES,
                            help="withheld: a member's copy never sent (its conversation closed or ended first)")
    queue_list.set_defaults(func=cmd_queue_list)


def register_events(commands: Any) -> None:
    event = commands.add_parser("events").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    event_list = listing(event.add_parser("list", help="list events (decisions, refusals, deliveries)"))
    event_list.add_argument("--pair", type=positive_int)
    event_list.add_argument("--kind")
    event_list.add_argument("--limit", type=positive_int, default=1000)
    event_list.set_defaults(func=cmd_events_list)
