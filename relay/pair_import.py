"""`pair import`: many pairs from one CSV file, checked whole, then written in short batches.

The whole file is checked before anything is written, and every bad row is reported as `FILE:LINE:
message`, LINE counting the file's lines (the header is line 1; a quoted field holding a line break
counts each of its lines, as csv.reader's line_num does); a file with any bad row writes nothing. A row is
checked by the same code as `pair create` and POST /api/pairs (relay/enrol.check_pair), then against the rest
of the file and the store: a handle belongs to one person in a program; a pair that exists already (same
program, same mentor and mentee addresses, whatever its status) is skipped and said so.

Then the new pairs are written BATCH at a time, each batch in a transaction of its own with its pairs'
events and welcomes (relay/enrol.enrol_checked), and the writer rests between batches
(relay/store/sharing.py): `serve`, which shares the store's one write lock, waits for one batch at most,
never for the whole file (10,000 rows in one transaction held the lock for minutes, and mail arriving
meanwhile, a disclosure included, got 451). An import that stops part-way (interrupted, the store changed
under it, the machine went down) leaves whole batches written; `Outcome` says which, and the same file
imported again skips them and writes the rest.

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
from collections.abc import Awaitable, Callable, Iterator
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
from relay.store.sharing import Sharing

REQUIRED = ("mentor_email", "mentor_name", "mentor_handle", "mentee_email", "mentee_name", "mentee_handle")
OPTIONAL = ("mentor_timezone", "mentee_timezone", "mentor_language", "mentee_language", "end_date", "policy",
            "mentor_nickname", "mentee_nickname")
COLUMNS = REQUIRED + OPTIONAL
NICKNAME_SEPARATOR = ";"
BATCH = 200  # new pairs (each with its event and welcomes) per write transaction
STDIN = "<stdin>"  # the name of a file read from standard input, in FILE:LINE messages


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
    """What an import did: filled as it goes, so that it is right when the import stops part-way."""

    created: list[tuple[int, int, str, str]] = field(default_factory=list)  # line, id, mentor alias, mentee alias
    skipped: list[tuple[int, int]] = field(default_factory=list)  # line, id of the existing pair
    planned: list[int] = field(default_factory=list)  # lines a dry run would create
    left: list[int] = field(default_factory=list)  # lines not written when the import stopped part-way
    batches: int = 0  # write transactions committed


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


async def check_file(settings: Settings, engine: AsyncEngine, program_id: str, source: Path | bytes,
                     today: datetime, name: str | None = None) -> list[Row]:
    """Every row checked, or ImportRefused with every problem found. `source`: the file, or its bytes (read
    from standard input: `name` then says what to call it)."""
    check_program(settings, program_id)
    name = name or (str(source) if isinstance(source, Path) else STDIN)
    text = decode(source.read_bytes() if isinstance(source, Path) else source, name)
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


async def _existing(connection: AsyncConnection, program_id: str, rows: list[Row]) -> dict[tuple[str, str], int]:
    """Inside a batch's transaction: the pairs of the program, among those of `rows`' addresses, that exist
    now ((mentor address key, mentee address key) -> pair id): another import of the same file, run at the
    same time, may have written some since the check."""
    keys = sorted({email_key(row.request.person(role).email) for row in rows for role in ("mentor", "mentee")})
    found = (await connection.execute(
        select(members.c.pair_id, members.c.role, members.c.email_key)
        .join(pairs, pairs.c.id == members.c.pair_id)
        .where(pairs.c.program_id == program_id, pairs.c.kind == "pair", members.c.email_key.in_(keys)))).all()
    by_pair: dict[int, dict[str, str]] = {}
    for row in found:
        by_pair.setdefault(row.pair_id, {})[row.role] = row.email_key
    return {(p["mentor"], p["mentee"]): pair_id for pair_id, p in sorted(by_pair.items())
            if "mentor" in p and "mentee" in p}


async def _claim(connection: AsyncConnection, program_id: str, rows: list[Row], label: str) -> list[dict[str, str]]:
    """Inside a batch's transaction: the handles checked again (the store may have changed since the
    check) and a fresh alias for each member, in a few queries for the whole batch instead of several per
    pair (what enrol_checked does for one pair)."""
    wanted_handles = sorted({handle_key(row.request.person(role).handle) for row in rows
                             for role in ("mentor", "mentee")})
    handles = {row.handle_key: row.email_key for row in (await connection.execute(
        select(members.c.handle_key, members.c.email_key).where(
            members.c.program_id == program_id, members.c.handle_key.in_(wanted_handles)))).all()}
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


async def _write_batch(connection: AsyncConnection, settings: Settings, program_id: str, rows: list[Row],
                       now: datetime, actor: str, label: str) -> tuple[list[tuple[int, int, str, str]],
                                                                        list[tuple[int, int]]]:
    """One batch, inside its transaction: (created, skipped), both as in Outcome; ImportRefused when the store
    changed since the check in a way that stops the batch (it is then rolled back whole)."""
    domain = settings.relay.domain
    existing = await _existing(connection, program_id, rows)
    keys = [(email_key(row.request.mentor.email), email_key(row.request.mentee.email)) for row in rows]
    skipped = [(row.line, existing[key]) for row, key in zip(rows, keys, strict=True) if key in existing]
    fresh = [row for row, key in zip(rows, keys, strict=True) if key not in existing]
    created = []
    claimed = await _claim(connection, program_id, fresh, label)
    for row, aliases in zip(fresh, claimed, strict=True):
        try:
            pair = await enrol_checked(connection, settings, row.request, now, actor, aliases)
        except EnrolmentError as exc:  # the store changed since the check: this batch is not written
            raise ImportRefused([f"{label}:{row.line}: {exc}"]) from None
        created.append((row.line, pair.id, pair.mentor.alias_address(domain), pair.mentee.alias_address(domain)))
    return created, skipped


async def import_pairs(settings: Settings, engine: AsyncEngine, program_id: str, source: Path | bytes,
                       now: datetime, *, dry_run: bool = False, actor: str = "cli", name: str | None = None,
                       progress: Callable[[int], None] | None = None, batch: int = BATCH,
                       outcome: Outcome | None = None,
                       between: Callable[[], Awaitable[bool]] | None = None) -> Outcome:
    """Check the file, then (unless a dry run) write the new pairs `batch` at a time, each batch in a
    transaction of its own, resting between them (relay/store/sharing.py) so that `serve` writes meanwhile.

    `outcome` (filled in place, also returned) says what was written when the import stops part-way: by an
    exception (the store changed under it, or stayed busy), or when `between`, awaited before each batch,
    returns False (an interrupt: the rows not written are then in `outcome.left`)."""
    label = name or (str(source) if isinstance(source, Path) else STDIN)
    rows = await check_file(settings, engine, program_id, source, now, label)
    outcome = outcome if outcome is not None else Outcome()
    outcome.skipped.extend((row.line, row.existing) for row in rows if row.existing is not None)
    fresh = [row for row in rows if row.existing is None]
    if dry_run:
        outcome.planned = [row.line for row in fresh]
        return outcome
    sharing = Sharing(engine)
    size = max(1, batch)
    start = 0
    try:
        for start in range(0, len(fresh), size):
            await sharing.rest()
            if between is not None and not await between():
                outcome.left = [row.line for row in fresh[start:]]
                break
            chunk = fresh[start:start + size]
            async with transaction(engine) as connection, chain.deferred(connection):
                created, skipped = await _write_batch(connection, settings, program_id, chunk, now, actor, label)
            outcome.created.extend(created)  # committed
            outcome.skipped.extend(skipped)
            outcome.batches += 1
            if progress is not None:
                progress(len(chunk))
    except BaseException:  # this batch was rolled back whole; those before it are written
        outcome.left = [row.line for row in fresh[start:]]
        raise
    finally:
        outcome.skipped.sort()
    return outcome
