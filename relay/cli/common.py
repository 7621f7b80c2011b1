"""What every command of the CLI shares: the one-line error (CliError), printing text or --json (emit,
listing; emit_stream for long listings), opening the store (with_store), argument types (positive_int,
instant), and the JSON shape of a pair (pair_dict). Command modules import from here and from the
domain packages, never from relay.cli itself.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relay import languages
from relay.config import Settings
from relay.store import keyset
from relay.store.bounds import MAX_ID, store_id
from relay.store.database import create_engine, migrate
from relay.store.pairs import Pair


class CliError(Exception):
    """An error to print as one line, exit status 1."""


def output_file(text: str) -> Path:
    """The file an export writes (-o), or CliError: a folder, or a file in a folder that does not exist."""
    target = Path(text)
    if target.is_dir():
        raise CliError(f"-o must name a file, {target} is a directory")
    if not target.resolve().parent.is_dir():
        raise CliError(f"cannot write {target}: no such folder {target.resolve().parent}")
    return target


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=json_default, ensure_ascii=False) if args.json else text)


async def emit_stream(args: argparse.Namespace, items: AsyncIterator[Any], line: Callable[[Any], str],
                      empty: str) -> int:
    """`emit` for a long listing, item by item as `items` yields them (memory stays bounded): with --json
    the very text `emit` prints for the whole list, else one `line` per item (`empty` when none).
    Returns the number of items."""
    count = 0
    out = sys.stdout
    async for item in items:
        if args.json:
            text = json.dumps(item, indent=2, default=json_default, ensure_ascii=False)
            out.write(("[\n" if count == 0 else ",\n") + textwrap.indent(text, "  ", lambda _: True))
        else:
            out.write(line(item) + "\n")
        count += 1
    if args.json:
        out.write("\n]\n" if count else "[]\n")
    elif not count:
        out.write(empty + "\n")
    out.flush()
    return count


async def pages(args: argparse.Namespace, read: Callable[[int, str | None], Awaitable[tuple[list[Any], str | None]]],
                chunk: int = 500) -> AsyncIterator[Any]:
    """The items of a keyset-paged listing (relay/store/keyset.py) for `emit_stream`: from the cursor
    `args.after` (or the first), `args.limit` of them (None: every one), read `chunk` at a time with
    `read(size, after)`. When items remain after the last one given, the cursor of the next page goes to
    stderr as `next page: --after CURSOR`, so that --json keeps printing a plain list."""
    after, left = args.after, args.limit
    while True:
        try:
            found, following = await read(chunk if left is None else min(chunk, left), after)
        except keyset.BadCursor:
            raise CliError("--after: not a page cursor that this relay printed") from None
        for item in found:
            yield item
        if left is not None:
            left -= len(found)
        if following is None:
            return
        if left == 0:
            print(f"next page: --after {following}", file=sys.stderr)
            return
        after = following


def paged(sub: argparse.ArgumentParser, what: str, default: int | None = None) -> argparse.ArgumentParser:
    """A listing read in pages: --limit N and --after CURSOR (the one a page before printed to stderr)."""
    sub.add_argument("--limit", type=positive_int, default=default,
                     help=f"print at most N {what} (default: {default or 'all'}); when more remain, the next "
                     "page's cursor is printed to stderr as 'next page: --after CURSOR'")
    sub.add_argument("--after", metavar="CURSOR", help=f"continue after the {what} of an earlier page")
    return sub


def listing(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A command that prints: it takes --json."""
    sub.add_argument("--json", action="store_true", help="print JSON")
    return sub


async def with_store(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await work(engine)
    finally:
        await engine.dispose()


def actor() -> str:
    """Who runs a command, for the record: cli:<login name>."""
    return f"cli:{getpass.getuser()}"


def positive_int(text: str) -> int:
    """A count or an id: from 1 to MAX_ID, the largest id the store holds (a bigger one would overflow
    the database's integer, not be "not found"), whatever its number of digits."""
    digits = text.strip()
    try:
        value = store_id(digits) if digits.isascii() and digits.isdigit() else int(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise argparse.ArgumentTypeError(f"expected a number, got {shown!r}") from None
    if value is not None and value < 1:
        raise argparse.ArgumentTypeError("expected a positive number")
    if value is None or value > MAX_ID:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_ID}, got one larger")
    return value


def language_tag(text: str) -> str:
    """An option value that must be a BCP 47 tag (es, fr-CA...); whether the relay writes in it is checked
    with the program (its templates folder may add languages)."""
    try:
        languages.candidates(text)
    except languages.LanguageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


# --now: a time in these years. Sweeps and reports reach back and forward from it by days and years; from
# year 1 or 9999 that leaves what datetime can hold (an OverflowError, not an answer).
NOW_YEARS = (1970, 9000)


def instant(text: str) -> datetime:
    """--now (the argument's type): an ISO 8601 time, UTC when it names no zone, in the years NOW_YEARS."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time such as 2026-06-30T12:00:00Z (ISO 8601), got {text!r}") \
            from None
    low, high = NOW_YEARS
    if not low <= when.year <= high:
        raise argparse.ArgumentTypeError(f"expected a time in the years {low} to {high}, got {text!r}")
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


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
                      "away_until": member.away_until, "cadence": member.cadence,
                      "nicknames": list(member.nicknames)}
    if messages is not None:
        data["messages"] = messages
    return data
