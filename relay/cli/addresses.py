"""`pair address add | remove`: further addresses a member may write from (relay/member_addresses.py)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from relay.cli.common import actor, emit, listing, positive_int, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.member_addresses import add_address, remove_address
from relay.store.conversations import Member


def cmd_address(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> Member:
        if args.address_action == "add":
            return await add_address(settings, engine, SystemClock(), args.id, args.role, args.email, actor())
        return await remove_address(engine, SystemClock(), args.id, args.role, args.email, actor())

    member = asyncio.run(with_store(settings, work))
    data = {"id": args.id, "role": args.role, "email": member.email, "other_emails": list(member.other_emails)}
    done = "added to" if args.address_action == "add" else "removed from"
    emit(args, data, f"{args.email} {done} the {args.role} of pair {args.id}; they may write from: "
         + ", ".join((member.email, *member.other_emails)) + f" (mail is delivered to {member.email})")
    return 0


def register(pair: Any) -> None:
    """`pair address ...` under the `pair` command's subparsers."""
    address = pair.add_parser("address", help="further addresses a member may write from").add_subparsers(
        dest="address_action", required=True, metavar="ACTION")
    for name, help_text in (("add", "another address the member may write from (delivery stays on the first)"),
                            ("remove", "stop accepting mail from an added address")):
        sub = listing(address.add_parser(name, help=help_text))
        sub.add_argument("id", type=positive_int, help="the pair")
        sub.add_argument("--role", required=True, choices=("mentor", "mentee"))
        sub.add_argument("--email", required=True)
        sub.set_defaults(func=cmd_address)
