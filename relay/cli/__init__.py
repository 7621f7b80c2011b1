"""The admin's command line: `mentor-relay [--config PATH] COMMAND` (names are a contract; see DESIGN.md).

Every listing command takes --json. Errors are one clear line on stderr and exit status 1 (2 for
wrong arguments, from argparse); configuration errors are `file:line: message`. This module only builds
the parser and runs a command; each group of commands is its own module with a `register(commands)`,
imported only when one of its commands runs (COMMANDS names every command with its help, so `--help` and a
command's start import nothing of the others):

  serve.py      serve, check-config, program list     pairs.py     pair create | import | list | show | close
  programs.py   program end
  addresses.py  pair address add | remove
  nudges.py     nudges run, pair away | resume         held.py      held list | show | release | reject
  groups.py     group create | add | list | show | close
  queue.py      queue list, events list                dkim.py      dkim keygen, dns-records
  archive.py    archive verify | export | purge | hold | release-hold
  person.py     person export | erase
  report.py     report                                 moderator.py moderator add | token | list
  common.py     CliError, emit, listing, with_store, argument types, pair_dict
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

Loader = Callable[[Any], None]


def _module(name: str) -> Any:
    return importlib.import_module(f"relay.cli.{name}")


def _pair(commands: Any) -> None:
    pair = _module("pairs").register(commands)
    _module("nudges").register_pair(pair)
    _module("addresses").register(pair)


def _program(commands: Any) -> None:
    _module("programs").register(_module("serve").register_program(commands))


def _by(module: str, function: str = "register") -> Loader:
    return lambda commands: getattr(_module(module), function)(commands)


# The commands in the order of `--help`: name, help, and what declares its arguments (importing its module).
# Only the command being run is imported: the others are named with their help and nothing more, so that a
# command starts without importing what the others need (the relay, DKIM, the console...).
COMMANDS: tuple[tuple[str, str, Loader], ...] = (
    ("serve", "run the SMTP relay and the delivery worker", _by("serve")),
    ("check-config", "validate relay.yaml, programs and policies", _by("serve")),
    ("program", "programs from programs_dir", _program),
    ("pair", "enrol and manage pairs", _pair),
    ("group", "enrol and manage groups (several mentees, one alias)", _by("groups")),
    ("queue", "the outbound delivery queue", _by("queue")),
    ("held", "the hold queue", _by("held")),
    ("dkim", "DKIM signing keys", _by("dkim")),
    ("dns-records", "the DNS records the domain needs: MX, SPF, DKIM, DMARC, PTR", _by("dkim")),
    ("events", "the record of decisions", _by("queue", "register_events")),
    ("report", "a program's figures: pairs, messages, reply times, nudges, moderation, attempts", _by("report")),
    ("archive", "the tamper-evident record: verify, export, retention, legal hold", _by("archive")),
    ("person", "one person's data rights: everything held about them, erasure", _by("person")),
    ("nudges", "reminders, check-ins and escalations", _by("nudges")),
    ("moderator", "review console accounts", _by("moderator")),
)
MODULES = ("addresses", "archive", "dkim", "groups", "held", "moderator", "nudges", "pairs", "person", "programs",
           "queue", "report", "serve")  # every command module (tests import them all ahead of forking)
_HELP = {name: text for name, text, _ in COMMANDS}


class _Only:
    """The subparsers as one command's module sees them: the module may declare several commands; only
    `name` joins the parser (with its help from COMMANDS), the others go to a parser nobody reads."""

    def __init__(self, commands: Any, name: str) -> None:
        self.commands, self.name = commands, name

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser:
        if name != self.name:
            return argparse.ArgumentParser(add_help=False)
        return cast(argparse.ArgumentParser, self.commands.add_parser(name, help=_HELP[name], **options))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with `command`'s arguments declared (its module imported); the other commands are
    only named, with their help, and take any arguments (so that parse_known_args finds the command)."""
    parser = argparse.ArgumentParser(prog="mentor-relay", description="Email relay for online mentoring programs.")
    parser.add_argument("--config", metavar="PATH", help="relay.yaml (default: $MENTOR_RELAY_CONFIG, "
                        "then config/relay.example.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, declare in COMMANDS:
        if name == command:
            declare(_Only(commands, name))
        else:
            commands.add_parser(name, help=help_text, add_help=False)
    return parser


def _not_utf8(argv: Sequence[str]) -> str | None:
    """The complaint about the first argument that is not UTF-8, or None. Python hands such bytes over as
    lone surrogates (\\udcff for the byte 0xff), which no name, address or store can take: every command
    would fail later, and differently (UnicodeEncodeError). A path is the exception: a file that exists
    (a CSV to import, named in Latin-1 on an old share) or one to write in a folder that exists (-o)."""
    for index, arg in enumerate(argv):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            option, equals, value = arg.partition("=")
            path = value if arg.startswith("-") and equals else arg
            if os.path.exists(path) or (os.sep in path and os.path.isdir(os.path.dirname(path))):
                continue
            if arg.startswith("-") and equals:
                name, arg = option, value
            elif index and argv[index - 1].startswith("-"):
                name = argv[index - 1]
            else:
                name = f"{index + 1}"
            return f"argument {name}: not valid UTF-8: {os.fsencode(arg).decode('utf-8', 'backslashreplace')}"
    return None


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments: the command is found with every command only named (`--help` and a wrong command
    are answered there), then the whole line is parsed with that command declared. An argument that is
    not UTF-8 is refused before anything runs (argparse's error, exit status 2)."""
    complaint = _not_utf8(sys.argv[1:] if argv is None else argv)
    if complaint is not None:
        build_parser().error(complaint)
    found, _ = build_parser().parse_known_args(argv)
    return build_parser(found.command).parse_args(argv)


def _loaded(module: str, name: str) -> Any:
    """The class `name` of `module` if it was imported (an exception of it can only exist then), or ()."""
    found = sys.modules.get(module)
    return getattr(found, name) if found is not None else ()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mail.log", "alembic", "apscheduler", "uvicorn.access"):  # chatter: connections, migrations, job runs
        logging.getLogger(noisy).setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    from relay.config import ConfigError, config_path, load_settings

    try:
        settings = load_settings(config_path(args.config))
        return int(args.func(args, settings))
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # the errors of modules this command imported (the others' cannot happen)
        if isinstance(exc, _loaded("relay.enrol", "LanguageRefused")):  # a bad option value, like argparse's
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, (_loaded("relay.cli.common", "CliError"), _loaded("relay.enrol", "EnrolmentError"),
                            _loaded("relay.holdqueue.actions", "ReviewError"),
                            _loaded("relay.store.database", "StoreError"))):  # e.g. written by a newer version
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, _loaded("sqlalchemy.exc", "SQLAlchemyError")):
            print(f"error: the store could not be used: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
                  file=sys.stderr)
            return 1
        if isinstance(exc, OSError):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise
