"""The admin's command line: `mentor-relay [--config PATH] COMMAND` (names are a contract; see DESIGN.md).

Every listing command takes --json. Errors are one clear line on stderr and exit status 1 (2 for
wrong arguments, from argparse); configuration errors are `file:line: message`. This module only builds
the parser and runs a command; each group of commands is its own module with a `register(commands)`:

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
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from relay.cli import (
    addresses,
    archive,
    dkim,
    groups,
    held,
    moderator,
    nudges,
    pairs,
    person,
    programs,
    queue,
    report,
    serve,
)
from relay.cli.common import CliError
from relay.config import ConfigError, config_path, load_settings
from relay.enrol import EnrolmentError, LanguageRefused
from relay.holdqueue.actions import ReviewError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mentor-relay", description="Email relay for online mentoring programs.")
    parser.add_argument("--config", metavar="PATH", help="relay.yaml (default: $MENTOR_RELAY_CONFIG, "
                        "then config/relay.example.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands)
    programs.register(serve.register_program(commands))
    pair_commands = pairs.register(commands)
    nudges.register_pair(pair_commands)
    addresses.register(pair_commands)
    groups.register(commands)
    queue.register(commands)
    held.register(commands)
    dkim.register(commands)
    queue.register_events(commands)
    report.register(commands)
    archive.register(commands)
    person.register(commands)
    nudges.register(commands)
    moderator.register(commands)
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
    except LanguageRefused as exc:  # a bad option value, like argparse's own errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CliError, EnrolmentError, ReviewError) as exc:
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
