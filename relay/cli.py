"""The admin's command line: `mentor-relay [--config PATH] COMMAND` (names are a contract; see DESIGN.md).

Every listing command takes --json. Errors are one clear line on stderr and exit status 1 (2 for
wrong arguments, from argparse); configuration errors are `file:line: message`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from relay.clock import SystemClock
from relay.config import ConfigError, Settings, config_path, load_settings
from relay.demo import banner, enrol_demo_pair
from relay.dkim import keys as dkim_keys
from relay.dkim import signer_from_settings
from relay.dkim.records import dkim_record, required_records
from relay.enrol import EnrolmentError, Person, close_pair, create_pair
from relay.moderation import review
from relay.moderation.policy import PolicyBook
from relay.nudges import cli as nudges_cli
from relay.safeguarding.approvals import CliActor
from relay.service import serve
from relay.store import held as held_store
from relay.store.database import create_engine, migrate
from relay.store.events import list_events
from relay.store.messages import count_by_pair
from relay.store.outbound import list_outbound
from relay.store.pairs import Pair, get_pair, list_pairs


class CliError(Exception):
    """An error to print as one line, exit status 1."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) if args.json else text)


async def with_store(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await work(engine)
    finally:
        await engine.dispose()


def pair_dict(pair: Pair, domain: str, messages: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": pair.id,
        "program": pair.program_id,
        "status": pair.status,
        "policy": pair.policy,
        "end_date": pair.end_date,
        "created_at": pair.created_at,
        "closed_at": pair.closed_at,
        "mentor_alias": pair.mentor.alias_address(domain),
        "mentee_alias": pair.mentee.alias_address(domain),
    }
    for role in ("mentor", "mentee"):
        member = pair.member(role)
        data[role] = {"handle": member.handle, "name": member.name, "email": member.email,
                      "alias": member.alias_address(domain), "timezone": member.timezone,
                      "away_until": member.away_until, "cadence": member.cadence}
    if messages is not None:
        data["messages"] = messages
    return data


# --- commands -------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    async def ready(relay: Any, running: Any) -> None:
        pair = await enrol_demo_pair(settings, relay.engine, relay.clock)
        if pair is not None:
            print(banner(settings, pair, running.smtp_host, running.smtp_port), flush=True)
        print(f"mentor-relay serving {settings.relay.domain} on {running.smtp_host}:{running.smtp_port} "
              f"(delivery: {settings.relay.delivery.transport}); stop with Ctrl-C", flush=True)
        if running.console_url:
            print(f"review console on {running.console_url}", flush=True)

    asyncio.run(serve(settings, on_ready=ready))
    return 0


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    errors = PolicyBook(settings.policies_dir).check_all()
    try:
        signer_from_settings(settings)
    except ConfigError as exc:
        errors.extend(exc.messages)
    if errors:
        raise ConfigError(errors)
    print(f"{settings.path}: OK ({len(settings.programs)} programs, domain {settings.relay.domain})")
    return 0


def cmd_program_list(args: argparse.Namespace, settings: Settings) -> int:
    programs = [p.model_dump(mode="json") for p in settings.programs.values()]
    lines = [f"{p['id']:<20} {p['name']:<40} policy={p['policy']} coordinator={p['coordinator']}" for p in programs]
    emit(args, programs, "\n".join(lines) or "no programs")
    return 0


def cmd_pair_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> Pair:
        return await create_pair(
            settings, engine, SystemClock(), program_id=args.program, policy=args.policy, end_date=args.end_date,
            mentor=Person(args.mentor_email, args.mentor_name, args.mentor_handle, args.mentor_timezone),
            mentee=Person(args.mentee_email, args.mentee_name, args.mentee_handle, args.mentee_timezone),
            mentor_cadence=args.mentor_cadence,
        )

    pair = asyncio.run(with_store(settings, work))
    domain = settings.relay.domain
    data = {"id": pair.id, "mentor_alias": pair.mentor.alias_address(domain),
            "mentee_alias": pair.mentee.alias_address(domain)}
    emit(args, data, f"pair {pair.id}\nmentor alias: {data['mentor_alias']}\nmentee alias: {data['mentee_alias']}")
    return 0


def cmd_pair_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.program is not None:
        settings.program(args.program)

    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            found = await list_pairs(connection, args.program)
            counts = await count_by_pair(connection, [p.id for p in found])
        return [pair_dict(p, settings.relay.domain, counts.get(p.id, 0)) for p in found]

    pairs = asyncio.run(with_store(settings, work))
    lines = [f"{p['id']:>5} {p['program']:<16} {p['status']:<7} {p['mentor']['handle']:<16} "
             f"{p['mentee']['handle']:<16} messages={p['messages']}" for p in pairs]
    emit(args, pairs, "\n".join(lines) or "no pairs")
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
        return await close_pair(engine, SystemClock(), args.id)

    closed = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "closed": True, "changed": closed},
         f"pair {args.id} closed" if closed else f"pair {args.id} was already closed")
    return 0


def cmd_queue_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            return [dict(row._mapping) for row in await list_outbound(connection, args.state)]

    entries = asyncio.run(with_store(settings, work))
    lines = [f"{e['id']} message={e['message_id']} pair={e['pair_id']} {e['state']} attempts={e['attempts']}"
             + (f" error={e['last_error']}" if e["last_error"] else "") for e in entries]
    emit(args, entries, "\n".join(lines) or "queue empty")
    return 0


def cmd_events_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            return await list_events(connection, kind=args.kind, pair_id=args.pair, limit=args.limit)

    found = asyncio.run(with_store(settings, work))
    lines = [f"{e['at']:%Y-%m-%d %H:%M:%S} {e['kind']:<16} {e['actor']:<10} pair={e['pair_id']} "
             f"message={e['message_id']} {json.dumps(e['detail'], ensure_ascii=False)}" for e in found]
    emit(args, found, "\n".join(lines) or "no events")
    return 0



def cmd_held_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.program is not None:
        settings.program(args.program)

    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            state = None if args.state == "all" else args.state
            return [held_store.summary(i) for i in await held_store.list_held(connection, state=state,
                                                                      program_id=args.program)]

    items = asyncio.run(with_store(settings, work))
    lines = [f"{i['id']} pair={i['pair_id']} {i['state']}{' URGENT' if i['severity'] == 'urgent' else ''} "
             f"{i['held_at']:%Y-%m-%d %H:%M} \"{i['subject'] or ''}\" "
             + "; ".join(f"{r['rule']}: {r['match']}" for r in i["reasons"]) for i in items]
    emit(args, items, "\n".join(lines) or "no held messages")
    return 0


def cmd_held_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> dict[str, Any]:
        async with engine.connect() as connection:
            item = await held_store.get_held(connection, args.id)
            if item is None:
                raise CliError(f"no held message with id {args.id}")
            history = await list_events(connection, message_id=args.id)
        data = held_store.summary(item)
        data["events"] = [{"at": e["at"], "kind": e["kind"], "actor": e["actor"], "detail": e["detail"]}
                          for e in history]
        return data

    data = asyncio.run(with_store(settings, work))
    text = [f"{data['id']} ({data['state']}{', URGENT' if data['severity'] == 'urgent' else ''}) "
            f"pair {data['pair_id']}, program {data['program']}, policy {data['policy']}",
            f"subject: {data['subject']}", f"held at: {data['held_at']:%Y-%m-%d %H:%M}",
            f"release needs {data['release_requires']} moderator(s); "
            f"approvals: {', '.join(data['approvals']) or 'none'}",
            "reasons:"]
    text.extend(f"  {r['rule']} ({r['kind']}, {r['action']}): {r['match']}" for r in data["reasons"])
    text.extend(f"  {e['at']:%Y-%m-%d %H:%M} {e['kind']} by {e['actor']}" for e in data["events"])
    emit(args, data, "\n".join(text))
    return 0


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


def cmd_dkim_keygen(args: argparse.Namespace, settings: Settings) -> int:
    try:
        selector = dkim_keys.check_selector(args.selector)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    path = Path(args.out).resolve() if args.out else settings.base_dir / "dkim" / f"{selector}.pem"
    key = dkim_keys.generate(args.algorithm)
    try:
        dkim_keys.write_private(key, path)
    except FileExistsError:
        raise CliError(f"{path} already exists and is left as it is (it may sign mail now): "
                       "choose another --selector or --out") from None
    record = dkim_record(settings.relay.domain, selector, key)
    data = {"selector": selector, "private_key": str(path), "record_name": record.name, "record_value": record.value}
    emit(args, data, "\n".join([
        f"wrote the {dkim_keys.describe(key)} private key to {path} (mode 0600)",
        "1. publish this DNS record (zone-file syntax; in a web form the value goes without the quotes):",
        f"   {record.zone_line()}",
        "2. once it resolves, set in relay.yaml and restart the relay:",
        f"   dkim: {{selector: {selector}, private_key: {_config_relative(settings, path)}}}",
    ]))
    return 0


def _config_relative(settings: Settings, path: Path) -> str:
    """How relay.yaml names `path`: relative to its folder when inside it."""
    return str(path.relative_to(settings.base_dir)) if path.is_relative_to(settings.base_dir) else str(path)


def cmd_dns_records(args: argparse.Namespace, settings: Settings) -> int:
    records = required_records(settings)
    lines = [f"; DNS records for {settings.relay.domain}, ready to paste into its zone"]
    for record in records:
        lines.append(f"; {record.note}")
        line = record.zone_line()
        if line is not None:
            lines.append(line)
    emit(args, [r.as_dict() for r in records], "\n".join(lines))
    return 0


# --- argument parsing ------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mentor-relay", description="Email relay for online mentoring programs.")
    parser.add_argument("--config", metavar="PATH", help="relay.yaml (default: $MENTOR_RELAY_CONFIG, "
                        "then config/relay.example.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def listing(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--json", action="store_true", help="print JSON")
        return sub

    commands.add_parser("serve", help="run the SMTP relay and the delivery worker").set_defaults(func=cmd_serve)
    commands.add_parser("check-config", help="validate relay.yaml, programs and policies").set_defaults(
        func=cmd_check_config)

    program = commands.add_parser("program", help="programs from programs_dir").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    listing(program.add_parser("list", help="list programs")).set_defaults(func=cmd_program_list)

    pair = commands.add_parser("pair", help="enrol and manage pairs").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = listing(pair.add_parser("create", help="enrol a mentor and a mentee"))
    create.add_argument("--program", required=True)
    for role in ("mentor", "mentee"):
        create.add_argument(f"--{role}-email", required=True)
        create.add_argument(f"--{role}-name", required=True)
        create.add_argument(f"--{role}-handle", required=True)
        create.add_argument(f"--{role}-timezone")
    create.add_argument("--policy", help="override the program's policy for this pair")
    create.add_argument("--end-date", metavar="YYYY-MM-DD")
    create.add_argument("--mentor-cadence", metavar="DAYS", help="the mentor's writing days, e.g. mon,thu: "
                        "on those days they get a digest of what waits for them")
    create.set_defaults(func=cmd_pair_create)
    pair_list = listing(pair.add_parser("list", help="list pairs"))
    pair_list.add_argument("--program")
    pair_list.set_defaults(func=cmd_pair_list)
    for name, func, help_text in (("show", cmd_pair_show, "one pair with its history"),
                                  ("close", cmd_pair_close, "end a pair's conversation")):
        sub = listing(pair.add_parser(name, help=help_text))
        sub.add_argument("id", type=_positive_int)
        sub.set_defaults(func=func)
    nudges_cli.register_pair(pair, listing)

    queue = commands.add_parser("queue", help="the outbound delivery queue").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    queue_list = listing(queue.add_parser("list", help="list outbound entries"))
    queue_list.add_argument("--state", choices=["queued", "sent", "failed", "bounced"])
    queue_list.set_defaults(func=cmd_queue_list)

    held = commands.add_parser("held", help="the hold queue").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    held_list = listing(held.add_parser("list", help="held messages, oldest first"))
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

    dkim = commands.add_parser("dkim", help="DKIM signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    keygen = listing(dkim.add_parser("keygen", help="make a signing key and print its DNS record"))
    keygen.add_argument("--selector", required=True, help="names the key in DNS; a new key gets a new selector")
    keygen.add_argument("--algorithm", choices=["rsa", "ed25519"], default="rsa",
                        help="rsa (2048 bits, verified everywhere; default) or ed25519")
    keygen.add_argument("--out", metavar="PATH",
                        help="the private key file (default: <config dir>/dkim/<selector>.pem)")
    keygen.set_defaults(func=cmd_dkim_keygen)
    listing(commands.add_parser("dns-records", help="the DNS records the domain needs: MX, SPF, DKIM, DMARC, PTR")
            ).set_defaults(func=cmd_dns_records)

    event = commands.add_parser("events", help="the record of decisions").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    event_list = listing(event.add_parser("list", help="list events (decisions, refusals, deliveries)"))
    event_list.add_argument("--pair", type=_positive_int)
    event_list.add_argument("--kind")
    event_list.add_argument("--limit", type=_positive_int, default=1000)
    event_list.set_defaults(func=cmd_events_list)
    from relay.archive.commands import register as register_archive  # imports this module: no cycle at load

    register_archive(commands, listing)
    nudges_cli.register(commands, listing)

    from relay.console import commands as console_commands  # here: it imports this module's helpers

    console_commands.register(commands, listing)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mail.log", "alembic", "apscheduler", "uvicorn.access"):  # chatter: connections, migrations, job runs
        logging.getLogger(noisy).setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    try:
        settings = load_settings(config_path(args.config))
        return int(args.func(args, settings))
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return 1
    except (CliError, EnrolmentError, review.ReviewError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"error: the store could not be used: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
