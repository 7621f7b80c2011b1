"""Console accounts on the command line: `mentor-relay moderator add | token | list`.

`moderator add --username U --program P [--program P2] [--admin]` reads the password from standard
input (asked twice on a terminal) and stores its argon2 hash. `moderator token --username U` prints a
new API token once; only its hash is kept."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from relay.cli.common import CliError, emit, listing, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.console.accounts import AccountError, add_moderator, issue_token, list_moderators
from relay.console.passwords import MIN_PASSWORD_LENGTH


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CliError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_moderator_add(args: argparse.Namespace, settings: Settings) -> int:
    programs = sorted(set(args.program or []))
    for program in programs:
        settings.program(program)  # unknown program: a clear error naming the known ones
    if not programs and not args.admin:
        raise CliError("--program is required for a moderator (admins see every program)")
    password = _read_password()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CliError(f"the password (read from standard input) must have at least {MIN_PASSWORD_LENGTH} "
                       "characters")

    async def work(engine: Any) -> Any:
        try:
            return await add_moderator(engine, username=args.username, password=password,
                                       role="admin" if args.admin else "moderator", programs=programs,
                                       now=SystemClock().now())
        except AccountError as exc:
            raise CliError(str(exc)) from None

    account = asyncio.run(with_store(settings, work))
    data = {"username": account.username, "role": account.role, "programs": list(account.programs)}
    emit(args, data, f"moderator {account.username} ({account.role}) added"
         + (f" for {', '.join(account.programs)}" if account.programs else ""))
    return 0


def cmd_moderator_token(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> str:
        try:
            return await issue_token(engine, args.username)
        except AccountError as exc:
            raise CliError(str(exc)) from None

    token = asyncio.run(with_store(settings, work))
    emit(args, {"username": args.username, "token": token},
         f"{token}\n(shown once; it replaces any earlier token of {args.username}. "
         "Send it as: Authorization: Bearer <token>)")
    return 0


def cmd_moderator_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            return [{"username": m.username, "role": m.role, "programs": list(m.programs)}
                    for m in await list_moderators(connection)]

    found = asyncio.run(with_store(settings, work))
    emit(args, found, "\n".join(f"{m['username']:<24} {m['role']:<10} {', '.join(m['programs'])}"
                                for m in found) or "no moderators")
    return 0


def register(commands: Any) -> None:
    moderator = commands.add_parser("moderator", help="review console accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add = listing(moderator.add_parser("add", help="add an account (password from standard input)"))
    add.add_argument("--username", required=True)
    add.add_argument("--program", action="append", help="a program the moderator reviews (repeatable)")
    add.add_argument("--admin", action="store_true", help="an admin: every program")
    add.set_defaults(func=cmd_moderator_add)
    token = listing(moderator.add_parser("token", help="make a new API token (printed once)"))
    token.add_argument("--username", required=True)
    token.set_defaults(func=cmd_moderator_token)
    listing(moderator.add_parser("list", help="list accounts")).set_defaults(func=cmd_moderator_list)
