"""Console accounts on the command line: `mentor-relay moderator add | password | token | list | sessions
| revoke | disable | enable`.

`moderator add --username U --program P [--program P2] [--role viewer|moderator|coordinator|admin]`
reads the password from standard input (asked twice on a terminal) and stores its argon2 hash; `--admin`
is short for `--role admin`. `moderator password --username U` sets a new one (same input), ends every
session of the account and clears its API token. `moderator token --username U` prints a new API token
once; only its hash is kept; `--revoke` clears it instead. `moderator sessions [--username U]` lists the
sessions that are still open; `moderator revoke --session ID` ends one, `--username U` ends all of the
account's and clears its API token. `moderator disable --username U` shuts the account out (no login, no
session, no token) until `moderator enable --username U`. Each change is an event with the admin's login
name."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from relay.cli.common import CliError, actor, emit, listing, positive_int, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.console import sessions
from relay.console.accounts import (
    AccountError,
    add_moderator,
    get_by_username,
    issue_token,
    list_moderators,
    revoke_token,
    set_disabled,
    set_password,
)
from relay.console.passwords import MIN_PASSWORD_LENGTH
from relay.console.roles import ROLES
from relay.store import events
from relay.store.database import transaction


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CliError("the two passwords differ")
        return first
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CliError(f"the password (read from standard input) must have at least {MIN_PASSWORD_LENGTH} "
                       "characters")
    return password


def _role(args: argparse.Namespace) -> str:
    if args.admin and args.role not in (None, "admin"):
        raise CliError(f"--admin and --role {args.role} contradict each other")
    return "admin" if args.admin else (args.role or "moderator")


def cmd_moderator_add(args: argparse.Namespace, settings: Settings) -> int:
    role = _role(args)
    programs = sorted(set(args.program or []))
    for program in programs:
        settings.program(program)  # unknown program: a clear error naming the known ones
    if not programs and role != "admin":
        raise CliError(f"--program is required for a {role} (admins see every program)")
    password = _read_password()

    async def work(engine: Any) -> Any:
        try:
            return await add_moderator(engine, username=args.username, password=password, role=role,
                                       programs=programs, now=SystemClock().now(), actor=actor())
        except AccountError as exc:
            raise CliError(str(exc)) from None

    account = asyncio.run(with_store(settings, work))
    data = {"username": account.username, "role": account.role, "programs": list(account.programs)}
    emit(args, data, f"moderator {account.username} ({account.role}) added"
         + (f" for {', '.join(account.programs)}" if account.programs else ""))
    return 0


def cmd_moderator_password(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password()

    async def work(engine: Any) -> int:
        try:
            return await set_password(engine, args.username, password, actor=actor(), now=SystemClock().now())
        except AccountError as exc:
            raise CliError(str(exc)) from None

    ended = asyncio.run(with_store(settings, work))
    emit(args, {"username": args.username, "sessions_ended": ended},
         f"password of {args.username} changed; {ended} open session(s) ended; its API token (if any) revoked")
    return 0


def cmd_moderator_token(args: argparse.Namespace, settings: Settings) -> int:
    if args.revoke:
        return _token_revoke(args, settings)

    async def work(engine: Any) -> str:
        try:
            return await issue_token(engine, args.username, actor=actor(), now=SystemClock().now())
        except AccountError as exc:
            raise CliError(str(exc)) from None

    token = asyncio.run(with_store(settings, work))
    emit(args, {"username": args.username, "token": token},
         f"{token}\n(shown once; it replaces any earlier token of {args.username}. "
         "Send it as: Authorization: Bearer <token>)")
    return 0


def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> bool:
        now = SystemClock().now()
        async with transaction(engine) as connection:
            account = await get_by_username(connection, args.username)
            if account is None:
                raise CliError(f"no account named {args.username!r}")
            revoked = await revoke_token(connection, account)
            await events.record(connection, "token_revoked", now, actor=actor(), username=account.username,
                                had_token=revoked)
        return revoked

    revoked = asyncio.run(with_store(settings, work))
    emit(args, {"username": args.username, "revoked": revoked},
         f"API token of {args.username} revoked" if revoked else f"{args.username} had no API token; nothing changed")
    return 0


def cmd_moderator_disable(args: argparse.Namespace, settings: Settings) -> int:
    disable = args.action == "disable"

    async def work(engine: Any) -> tuple[bool, int, bool]:
        try:
            return await set_disabled(engine, args.username, disable, actor=actor(), now=SystemClock().now())
        except AccountError as exc:
            raise CliError(str(exc)) from None

    changed, ended, revoked = asyncio.run(with_store(settings, work))
    state = "disabled" if disable else "enabled"
    text = (f"{args.username} was {state} already; nothing changed" if not changed
            else f"{args.username} disabled; {ended} open session(s) ended"
                 + ("; its API token revoked" if revoked else "") if disable
            else f"{args.username} enabled (log in with its password; `moderator token` for a new API token)")
    emit(args, {"username": args.username, "state": state, "changed": changed, "sessions_ended": ended,
                "token_revoked": revoked}, text)
    return 0


def cmd_moderator_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            return [{"username": m.username, "role": m.role, "programs": list(m.programs), "disabled": m.disabled}
                    for m in await list_moderators(connection)]

    found = asyncio.run(with_store(settings, work))
    emit(args, found, "\n".join(f"{m['username']:<24} {m['role']:<12} {', '.join(m['programs'])}"
                                + ("  (disabled)" if m["disabled"] else "")
                                for m in found) or "no moderators")
    return 0


def session_dict(session: sessions.Session) -> dict[str, Any]:
    return {"id": session.id, "username": session.username, "created_at": session.created_at,
            "last_seen_at": session.last_seen_at, "ends_at": session.ends_at(), "address": session.address,
            "user_agent": session.user_agent}


def cmd_moderator_sessions(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            account = None
            if args.username:
                account = await get_by_username(connection, args.username)
                if account is None:
                    raise CliError(f"no account named {args.username!r}")
            found = await sessions.live(connection, SystemClock().now(), account.id if account else None)
        return [session_dict(s) for s in found]

    found = asyncio.run(with_store(settings, work))
    emit(args, found, "\n".join(
        f"{s['id']:<6} {s['username']:<20} since {s['created_at']:%Y-%m-%d %H:%M} "
        f"last {s['last_seen_at']:%Y-%m-%d %H:%M} UTC  {s['address'] or ''}  {s['user_agent'] or ''}"
        for s in found) or "no open sessions")
    return 0


def cmd_moderator_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> tuple[int, bool]:
        now = SystemClock().now()
        revoked = False
        async with transaction(engine) as connection:
            if args.session is not None:
                target = await sessions.get(connection, args.session)
                if target is None:
                    raise CliError(f"no session with id {args.session}")
                ended = await sessions.revoke(connection, now, actor(), session_id=args.session)
                username = target.username
            else:
                account = await get_by_username(connection, args.username)
                if account is None:
                    raise CliError(f"no account named {args.username!r}")
                ended = await sessions.revoke(connection, now, actor(), moderator_id=account.id)
                username = account.username
                revoked = await revoke_token(connection, account)
            await events.record(connection, "sessions_revoked", now, actor=actor(), username=username,
                                session=args.session, ended=ended, token_revoked=revoked)
        return ended, revoked

    ended, revoked = asyncio.run(with_store(settings, work))
    emit(args, {"ended": ended, "token_revoked": revoked},
         f"{ended} open session(s) ended" + ("; the account's API token revoked" if revoked else ""))
    return 0


def register(commands: Any) -> None:
    moderator = commands.add_parser("moderator").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add = listing(moderator.add_parser("add", help="add an account (password from standard input)"))
    add.add_argument("--username", required=True)
    add.add_argument("--program", action="append", help="a program the account works on (repeatable)")
    add.add_argument("--role", choices=ROLES,
                     help="viewer (read-only), moderator (default: decides on held mail), coordinator (also "
                          "manages pairs and sees addresses), admin (everything, every program)")
    add.add_argument("--admin", action="store_true", help="the same as --role admin")
    add.set_defaults(func=cmd_moderator_add)
    password = listing(moderator.add_parser(
        "password", help="set a new password (from standard input); every session of the account ends"))
    password.add_argument("--username", required=True)
    password.set_defaults(func=cmd_moderator_password)
    token = listing(moderator.add_parser("token", help="make a new API token (printed once), or --revoke it"))
    token.add_argument("--username", required=True)
    token.add_argument("--revoke", action="store_true", help="clear the account's API token instead")
    token.set_defaults(func=cmd_moderator_token)
    listing(moderator.add_parser("list", help="list accounts")).set_defaults(func=cmd_moderator_list)
    open_sessions = listing(moderator.add_parser("sessions", help="list open console sessions"))
    open_sessions.add_argument("--username", help="only this account's")
    open_sessions.set_defaults(func=cmd_moderator_sessions)
    revoke = listing(moderator.add_parser(
        "revoke", help="end console sessions (one; or all of an account, whose API token is revoked too)"))
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", type=positive_int, metavar="ID", help="a session id from `moderator sessions`")
    which.add_argument("--username", help="every session of this account, and its API token")
    revoke.set_defaults(func=cmd_moderator_revoke)
    for name, what in (("disable", "shut an account out: no login, its sessions end, its API token is revoked"),
                       ("enable", "let a disabled account log in again (with its password; no token comes back)")):
        switch = listing(moderator.add_parser(name, help=what))
        switch.add_argument("--username", required=True)
        switch.set_defaults(func=cmd_moderator_disable)
