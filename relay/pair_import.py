"""`pair import`: many pairs from one CSV file, all or nothing.

The whole file is checked before anything is written, and every bad row is reported as `FILE:LINE:
message`, LINE counting the file's lines (the header is line 1; a quoted field holding a line break
counts each of its lines, as csv.reader's line_num does). A row is checked by the same code as `pair
create` and POST /api/pairs (relay/enrol.check_pair), then against the rest of the file and the store:
a handle belongs to one person in a program; a pair that exists already (same program, same mentor and
mentee addresses, whatever its status) is skipped and said so. Only when every row is good are the new
pairs written, in one transaction, each with its event and welcomes (relay/enrol.enrol_checked).

Encoding: UTF-8, with or without a byte order mark (Excel's "CSV UTF-8"). Anything else (UTF-16, a
legacy code page such as Windows-1252) is refused with the line of the first undecodable byte: guessing
an encoding would silently misspell names, and a misspelt name is not scrubbed from the mail.
Nicknames: the optional columns mentor_nickname / mentee_nickname hold several separated by ";".
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import ids
from relay.archive import chain
from relay.config import Settings
from relay.enrol import EnrolmentError, PairRequest, Person, check_pair, check_program, enrol_checked
from relay.store.conversations import email_key, handle_key
from relay.store.database import transaction
from relay.store.schema import members, pairs

REQUIRED = ("mentor_email", "mentor_name", "mentor_handle", "mentee_email", "mentee_name", "mentee_handle")
OPTIONAL = ("mentor_timezone", "mentee_timezone", "mentor_language", "mentee_language", "end_date", "policy",
            "mentor_nickname", "mentee_nickname")
COLUMNS = REQUIRED + OPTIONAL
NICKNAME_SEPARATOR = ";"


class ImportRefused(Exception):
    """The file has bad rows; `messages` are the `FILE:LINE: message` lines, in file order."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Row:
    line: int
    request: PairRequest
    existing: int | None = None  # the id of the pair that exists already: skipped


@dataclass
class Outcome:
    created: list[tuple[int, int, str, str]] = field(default_factory=list)  # line, id, mentor alias, mentee alias
    skipped: list[tuple[int, int]] = field(default_factory=list)  # line, id of the existing pair
    planned: list[int] = field(default_factory=list)  # lines a dry run would create


def decode(data: bytes, name: str) -> str:
    """The file's text: UTF-8 with or without a BOM, else ImportRefused saying what to do."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportRefused([f"{name}:1: the file is UTF-16; save it as CSV UTF-8 (Excel: \"CSV UTF-8 (comma "
                             f"delimited)\") and import it again"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportRefused([f"{name}:{line}: the file is not UTF-8 (byte 0x{data[exc.start]:02x} cannot be "
                             f"read); save it as CSV UTF-8 (Excel: \"CSV UTF-8 (comma delimited)\"; other "
                             f"encodings such as Windows-1252 or UTF-16 are not accepted)"]) from None


def records(text: str, name: str, errors: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, fields) of each non-blank data row; problems are appended to `errors` as FILE:LINE."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            errors.append(f"{name}:1: the file is empty; the first line names the columns "
                          f"({', '.join(REQUIRED)})")
            return
        columns = [c.strip().lower() for c in header]
        missing = [c for c in REQUIRED if c not in columns]
        unknown = [c for c in columns if c not in COLUMNS]
        doubled = sorted({c for c in columns if columns.count(c) > 1})
        if missing:
            errors.append(f"{name}:1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        if unknown:
            errors.append(f"{name}:1: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(known: {', '.join(COLUMNS)})")
        if doubled:
            errors.append(f"{name}:1: column{'s' if len(doubled) > 1 else ''} {', '.join(doubled)} named twice")
        if missing or unknown or doubled:
            return
        line = reader.line_num
        for fields in reader:
            start, line = line + 1, reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(columns):
                errors.append(f"{name}:{start}: {len(fields)} fields where the header has {len(columns)}")
                continue
            yield start, {c: f.strip() for c, f in zip(columns, fields, strict=True)}
    except csv.Error as exc:
        errors.append(f"{name}:{reader.line_num or line}: malformed CSV: {exc} (is a quote left open?)")


def request_of(program_id: str, fields: dict[str, str]) -> PairRequest:
    empty = [c for c in REQUIRED if not fields.get(c)]
    if empty:
        raise EnrolmentError(f"empty {', '.join(empty)}")

    def person(role: str) -> Person:
        nicknames = tuple(n.strip() for n in fields.get(f"{role}_nickname", "").split(NICKNAME_SEPARATOR) if n.strip())
        return Person(fields[f"{role}_email"], fields[f"{role}_name"], fields[f"{role}_handle"],
                      fields.get(f"{role}_timezone") or None, nicknames, fields.get(f"{role}_language") or None)

    return PairRequest(program_id, person("mentor"), person("mentee"), fields.get("policy") or None,
                       fields.get("end_date") or None)


async def _store_view(connection: AsyncConnection,
                      program_id: str) -> tuple[dict[str, str], dict[tuple[str, str], int]]:
    """The program's handles (handle key -> the address key of its owner) and its pairs (mentor address
    key, mentee address key) -> pair id; two queries for the whole file."""
    handles = {row.handle_key: row.email_key for row in (await connection.execute(
        select(members.c.handle_key, members.c.email_key).where(members.c.program_id == program_id))).all()}
    rows = (await connection.execute(
        select(members.c.pair_id, members.c.role, members.c.email_key)
        .join(pairs, pairs.c.id == members.c.pair_id)
        .where(pairs.c.program_id == program_id, pairs.c.kind == "pair"))).all()
    by_pair: dict[int, dict[str, str]] = {}
    for row in rows:
        by_pair.setdefault(row.pair_id, {})[row.role] = row.email_key
    existing = {(p["mentor"], p["mentee"]): pair_id for pair_id, p in sorted(by_pair.items())
                if "mentor" in p and "mentee" in p}
    return handles, existing


async def check_file(settings: Settings, engine: AsyncEngine, program_id: str, path: Path, today: datetime,
                     name: str | None = None) -> list[Row]:
    """Every row checked, or ImportRefused with every problem found."""
    check_program(settings, program_id)
    name = name or str(path)
    text = decode(path.read_bytes(), name)
    errors: list[str] = []
    async with engine.connect() as connection:
        handles, existing = await _store_view(connection, program_id)
    owners: dict[str, tuple[str, int]] = {}  # handle key -> (address key, first line) in this file
    seen: dict[tuple[str, str], int] = {}
    rows: list[Row] = []
    for line, fields in records(text, name, errors):
        try:
            request = check_pair(settings, request_of(program_id, fields), today=today.date())
        except EnrolmentError as exc:
            errors.append(f"{name}:{line}: {exc}")
            continue
        key = (email_key(request.mentor.email), email_key(request.mentee.email))
        if key in seen:
            errors.append(f"{name}:{line}: the same mentor and mentee as line {seen[key]}")
            continue
        seen[key] = line
        if key in existing:
            rows.append(Row(line, request, existing[key]))
            continue
        problems = []
        for role in ("mentor", "mentee"):
            person = request.person(role)
            handle, owner = handle_key(person.handle), email_key(person.email)
            if handle in owners and owners[handle][0] != owner:
                problems.append(f"the {role}'s handle {person.handle!r} is used by someone else on line "
                                f"{owners[handle][1]}")
            elif handles.get(handle, owner) != owner:
                problems.append(f"the {role}'s handle {person.handle!r} is already used in program {program_id!r}")
            owners.setdefault(handle, (owner, line))
        if problems:
            errors.append(f"{name}:{line}: {'; '.join(problems)}")
            continue
        rows.append(Row(line, request))
    if errors:
        raise ImportRefused(errors)
    return rows


async def _claim(connection: AsyncConnection, program_id: str, rows: list[Row], label: str) -> list[dict[str, str]]:
    """Inside the writing transaction: the handles checked again (the store may have changed since the
    check) and a fresh alias for each member, in a few queries for the whole file instead of several per
    pair (what enrol_checked does for one pair)."""
    handles = {row.handle_key: row.email_key for row in (await connection.execute(
        select(members.c.handle_key, members.c.email_key).where(members.c.program_id == program_id))).all()}
    problems = []
    for row in rows:
        for role in ("mentor", "mentee"):
            person = row.request.person(role)
            if handles.get(handle_key(person.handle), email_key(person.email)) != email_key(person.email):
                problems.append(f"{label}:{row.line}: the {role}'s handle {person.handle!r} was taken meanwhile "
                                f"in program {program_id!r}")
    if problems:
        raise ImportRefused(problems)
    wanted = [{role: ids.alias_local_part(row.request.person(role).handle) for role in ("mentor", "mentee")}
              for row in rows]
    for _ in range(20):  # bounded: random suffixes collide rarely
        candidates = [alias for entry in wanted for alias in entry.values()]
        taken: set[str] = set()
        for start in range(0, len(candidates), 500):
            chunk = candidates[start:start + 500]
            for column in (members.c.alias, pairs.c.alias):
                found = await connection.execute(select(column).where(column.in_(chunk)))
                taken.update(alias for alias in found.scalars() if alias)
        counts = Counter(candidates)
        doubled = {alias for alias, count in counts.items() if count > 1}
        clash = taken | doubled
        if not clash:
            return wanted
        for index, entry in enumerate(wanted):
            for role, alias in entry.items():
                if alias in clash:
                    wanted[index][role] = ids.alias_local_part(rows[index].request.person(role).handle)
                    clash.discard(alias)
    raise ImportRefused([f"{label}: no free aliases found; please try again"])


async def import_pairs(settings: Settings, engine: AsyncEngine, program_id: str, path: Path, now: datetime, *,
                       dry_run: bool = False, actor: str = "cli", name: str | None = None,
                       progress: Callable[[int], None] | None = None) -> Outcome:
    """Check the file, then (unless a dry run) write every new pair in one transaction."""
    rows = await check_file(settings, engine, program_id, path, now, name)
    outcome = Outcome(skipped=[(row.line, row.existing) for row in rows if row.existing is not None])
    fresh = [row for row in rows if row.existing is None]
    if dry_run:
        outcome.planned = [row.line for row in fresh]
        return outcome
    domain = settings.relay.domain
    label = name or str(path)
    async with transaction(engine) as connection, chain.deferred(connection):
        claimed = await _claim(connection, program_id, fresh, label)
        for row, aliases in zip(fresh, claimed, strict=True):
            try:
                pair = await enrol_checked(connection, settings, row.request, now, actor, aliases)
            except EnrolmentError as exc:  # the store changed since the check: nothing is written
                raise ImportRefused([f"{label}:{row.line}: {exc}"]) from None
            outcome.created.append((row.line, pair.id, pair.mentor.alias_address(domain),
                                    pair.mentee.alias_address(domain)))
            if progress is not None:
                progress(1)
    return outcome
