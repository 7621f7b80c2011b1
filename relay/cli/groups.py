"""`group create | add | list | show | close | resume`: enrol and manage groups (one or two mentors, several
mentees, one alias: relay/groups.py)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from relay.cli.common import CliError, actor, emit, language_tag, listing, positive_int, with_store
from relay.clock import SystemClock
from relay.config import Settings
from relay.enrol import Person
from relay.groups import Added, add_member, close_group, create_group, resume_group
from relay.store.conversations import Conversation, get_conversation, list_conversations
from relay.store.events import list_events
from relay.store.messages import count_by_pair


def group_dict(group: Conversation, domain: str, messages: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": group.id, "program": group.program_id, "name": group.name, "alias": group.alias_address(domain),
        "status": group.status, "policy": group.policy, "created_at": group.created_at,
        "closed_at": group.closed_at,
        "members": [{"id": m.id, "role": m.role, "handle": m.handle, "name": m.name, "email": m.email,
                     "alias": m.alias_address(domain), "timezone": m.timezone, "language": m.language}
                    for m in group.members],
    }
    if messages is not None:
        data["messages"] = messages
    return data


def cmd_group_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> Conversation:
        return await create_group(settings, engine, SystemClock(), program_id=args.program, name=args.name,
                                  policy=args.policy, actor=actor())

    group = asyncio.run(with_store(settings, work))
    data = {"id": group.id, "alias": group.alias_address(settings.relay.domain)}
    emit(args, data, f"group {group.id} ({group.name})\nalias: {data['alias']}")
    return 0


def cmd_group_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> Added:
        return await add_member(settings, engine, SystemClock(), args.id, role=args.role,
                                person=Person(args.email, args.name, args.handle, args.timezone,
                                              tuple(args.nickname)),
                                language=args.language, actor=actor())

    added = asyncio.run(with_store(settings, work))
    member = added.member
    data = {"id": member.id, "role": member.role, "handle": member.handle}
    emit(args, data, f"{member.role} {member.handle} joined group {added.group.id} (member {member.id}); "
                     f"their private alias: {member.alias_address(settings.relay.domain)}")
    return 0


def cmd_group_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.program is not None:
        settings.program(args.program)

    async def work(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            found = await list_conversations(connection, args.program, kind="group")
            counts = await count_by_pair(connection, [g.id for g in found])
        return [group_dict(g, settings.relay.domain, counts.get(g.id, 0)) for g in found]

    groups = asyncio.run(with_store(settings, work))
    lines = [f"{g['id']:>5} {g['program']:<16} {g['status']:<7} {g['name']:<24} "
             f"mentors={sum(m['role'] == 'mentor' for m in g['members'])} "
             f"mentees={sum(m['role'] == 'mentee' for m in g['members'])} messages={g['messages']}" for g in groups]
    emit(args, groups, "\n".join(lines) or "no groups")
    return 0


def cmd_group_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> dict[str, Any]:
        async with engine.connect() as connection:
            group = await get_conversation(connection, args.id)
            if group is None or not group.is_group:
                raise CliError(f"no group with id {args.id}")
            counts = await count_by_pair(connection, [group.id])
            history = await list_events(connection, pair_id=group.id)
        data = group_dict(group, settings.relay.domain, counts.get(group.id, 0))
        data["events"] = [{"at": e["at"], "kind": e["kind"], "actor": e["actor"]} for e in history]
        return data

    data = asyncio.run(with_store(settings, work))
    text = [f"group {data['id']} {data['name']!r} ({data['program']}, {data['status']}), alias {data['alias']}, "
            f"{data['messages']} messages"]
    text.extend(f"  {m['role']}: {m['handle']} = {m['name']} <{m['email']}>, private alias {m['alias']}"
                for m in data["members"])
    text.extend(f"  {e['at']:%Y-%m-%d %H:%M} {e['kind']} by {e['actor']}" for e in data["events"][-20:])
    emit(args, data, "\n".join(text))
    return 0


def cmd_group_close(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> bool:
        return await close_group(settings, engine, SystemClock(), args.id, args.reason, actor=actor())

    closed = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "closed": True, "changed": closed},
         f"group {args.id} closed" if closed else f"group {args.id} was already closed")
    return 0


def cmd_group_resume(args: argparse.Namespace, settings: Settings) -> int:
    async def work(engine: Any) -> bool:
        return await resume_group(engine, SystemClock(), args.id, actor=actor())

    resumed = asyncio.run(with_store(settings, work))
    emit(args, {"id": args.id, "status": "active", "changed": resumed},
         f"group {args.id} resumed: mail is delivered again (mail held meanwhile waits in `held list`)" if resumed
         else f"group {args.id} was not paused")
    return 0


def register(commands: Any) -> Any:
    group = commands.add_parser("group").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create = listing(group.add_parser("create", help="create a group; prints its id and alias"))
    create.add_argument("--program", required=True)
    create.add_argument("--name", required=True, help="shown beside each sender's handle, e.g. Robotics group")
    create.add_argument("--policy", help="override the program's policy for this group")
    create.set_defaults(func=cmd_group_create)
    add = listing(group.add_parser("add", help="add a mentor or a mentee to a group"))
    add.add_argument("id", type=positive_int)
    add.add_argument("--role", required=True, choices=("mentor", "mentee"))
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--handle", required=True)
    add.add_argument("--timezone")
    add.add_argument("--language", metavar="BCP47", type=language_tag,
                     help="the member's language, e.g. en, es, es-MX (falls back to es)")
    add.add_argument("--nickname", action="append", default=[], metavar="NAME",
                     help="a name the member is also known by, scrubbed like the real name (repeatable)")
    add.set_defaults(func=cmd_group_add)
    group_list = listing(group.add_parser("list", help="list groups"))
    group_list.add_argument("--program")
    group_list.set_defaults(func=cmd_group_list)
    show = listing(group.add_parser("show", help="one group with its members and history"))
    show.add_argument("id", type=positive_int)
    show.set_defaults(func=cmd_group_show)
    close = listing(group.add_parser("close", help="end a group's conversation"))
    close.add_argument("id", type=positive_int)
    close.add_argument("--reason")
    close.set_defaults(func=cmd_group_close)
    resume = listing(group.add_parser("resume", help="deliver a group's mail again after a concern paused it"))
    resume.add_argument("id", type=positive_int)
    resume.set_defaults(func=cmd_group_resume)
    return group
