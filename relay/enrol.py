"""Enrolling pairs: validate people and handles, mint aliases, write the pair and its event.

One code path checks a person for every way of enrolling them (`pair create`, `pair import`, POST
/api/pairs, `group add`): `check_person` (address, name, handle that does not reveal the name,
nicknames, time zone, language). `check_pair` checks a whole pair request without the store (so an
import can check every row before writing any); `enrol_checked` writes one checked pair inside the
caller's transaction (handles against the store, aliases, the pair, its event, the welcome).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay import ids, languages
from relay.clock import Clock
from relay.config import FIRST_END_DATE, LAST_END_DATE, Settings, policy_name_ok
from relay.nudges.rules.cadence import parse_cadence
from relay.nudges.welcome import queue_welcome
from relay.store import events
from relay.store.database import transaction
from relay.store.pairs import ROLES, Pair, alias_taken, get_pair, handle_key, handle_taken, insert_pair


class EnrolmentError(Exception):
    """A problem with what the admin asked for, worded for the admin."""


class LanguageRefused(EnrolmentError):
    """A language the relay cannot write a person's notices in (the command line exits 2, as for a bad
    option value)."""


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    handle: str
    timezone: str | None = None
    nicknames: tuple[str, ...] = ()
    language: str | None = None  # BCP 47; None: the program's language


@dataclass(frozen=True)
class PairRequest:
    """What enrolling one pair needs (checked by `check_pair`)."""

    program_id: str
    mentor: Person
    mentee: Person
    policy: str | None = None
    end_date: str | None = None
    mentor_cadence: str | None = None

    def person(self, role: str) -> Person:
        return self.mentor if role == "mentor" else self.mentee


def normalise_email(address: str, check_deliverability: bool) -> str:
    try:
        return validate_email(address, check_deliverability=check_deliverability).normalized
    except EmailNotValidError as exc:
        raise EnrolmentError(f"{address!r} is not a usable email address: {exc}") from None


# Bounds on what a person is enrolled with (docs/operations.md, Enrolment). Every name and nickname is
# searched for in every message of the pair (relay/anonymize/names.py), so their size is the matcher's cost:
# a 200-word "name" made each message take most of a minute, and the pair could never write.
MAX_NAME_CHARS = 150
MAX_NAME_WORDS = 20  # "María de los Ángeles García Fernández de la Torre" has nine; an Arabic name of
# generations ("... بن محمد بن عبد الله بن ...") thirteen or more
MAX_HANDLE_CHARS = 40
MAX_NICKNAME_CHARS = 60
MAX_NICKNAME_WORDS = 8
MAX_NICKNAMES = 10

# Direction marks (left-to-right, right-to-left, Arabic letter mark): invisible, typed by right-to-left
# keyboards and pasted from spreadsheets, harmless alone; dropped from a name rather than refused.
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")


def _unsafe_character(text: str) -> str | None:
    """The first control character (C0, DEL, C1) or bidirectional embedding, override or isolate in `text`,
    as U+XXXX, or None. Such characters hide or reorder what a moderator reads and are never part of a name."""
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
            return f"U+{code:04X}"
    return None


def check_text(what: str, value: str, max_chars: int, max_words: int | None = None) -> str:
    """`value` with its white space collapsed to single spaces, or EnrolmentError naming `what` (e.g. "the
    mentor's real name"): no other control character and no bidirectional control, at most `max_chars`
    characters and `max_words` words."""
    text = " ".join(value.translate(_DIRECTION_MARKS).split())  # line breaks, tabs: one space
    unsafe = _unsafe_character(text)
    if unsafe is not None:
        raise EnrolmentError(f"{what} contains a control or text-direction character ({unsafe}); "
                             f"type it again without it")
    if len(text) > max_chars:
        raise EnrolmentError(f"{what} is {len(text)} characters long; at most {max_chars} are allowed")
    if max_words is not None and len(text.split()) > max_words:
        raise EnrolmentError(f"{what} has {len(text.split())} words; at most {max_words} are allowed")
    return text


def check_end_date(text: str) -> date:
    """An end date as YYYY-MM-DD between FIRST_END_DATE and LAST_END_DATE, or EnrolmentError."""
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise EnrolmentError(f"end date {text!r} is not a date of the form YYYY-MM-DD") from None
    if not FIRST_END_DATE <= parsed <= LAST_END_DATE:
        raise EnrolmentError(f"end date {parsed.isoformat()} is out of range: it must be between "
                             f"{FIRST_END_DATE.isoformat()} and {LAST_END_DATE.isoformat()}")
    return parsed


def check_policy_name(policy: str, settings: Settings) -> str:
    """A policy name that names an existing file in policies_dir, or EnrolmentError."""
    if not policy_name_ok(policy):
        raise EnrolmentError(f"no policy named {policy!r}: a policy name is a file name, never a path "
                             f"(the file in {settings.policies_dir} without .yaml)")
    if not settings.policy_exists(policy):
        raise EnrolmentError(f"no policy named {policy!r} in {settings.policies_dir}")
    return policy


def check_person(role: str, person: Person, check_deliverability: bool,
                 language_folder: Path | None = None) -> Person:
    """The person cleaned up, or EnrolmentError worded for the admin (`language_folder`: the program's
    templates folder, whose .po files add languages: relay/languages.check)."""
    name = check_text(f"the {role}'s real name", person.name, MAX_NAME_CHARS, MAX_NAME_WORDS)
    handle = check_text(f"the {role}'s handle", person.handle, MAX_HANDLE_CHARS)
    if not name:
        raise EnrolmentError(f"the {role}'s real name is empty")
    if not handle:  # (check_text bounds its length)
        raise EnrolmentError(f"the {role}'s handle must be 1 to {MAX_HANDLE_CHARS} characters")
    if "@" in handle or "<" in handle or ">" in handle:
        raise EnrolmentError(f"the {role}'s handle may not contain @, < or >")
    handle_words = set(re.findall(r"\w+", handle_key(handle)))
    name_parts = [part for part in re.findall(r"\w+", handle_key(name)) if len(part) >= 3]
    if handle_key(handle) in handle_key(name) or any(part in handle_words for part in name_parts):
        raise EnrolmentError(f"the {role}'s handle must not contain their real name or a part of it")
    nicknames = check_nicknames(role, person.nicknames, name, handle)
    if person.timezone:
        try:
            ZoneInfo(person.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise EnrolmentError(f"unknown time zone {person.timezone!r} for the {role}") from None
    language = None
    if person.language:
        try:
            language = languages.check(person.language, language_folder)
        except languages.LanguageError as exc:
            raise LanguageRefused(f"the {role}'s language: {exc}") from None
    return Person(normalise_email(person.email, check_deliverability), name, handle, person.timezone, nicknames,
                  language)


def check_nicknames(role: str, nicknames: tuple[str, ...] | list[str], name: str, handle: str) -> tuple[str, ...]:
    """Known nicknames of a person, cleaned up (spaces collapsed, duplicates and the name itself dropped).

    Each is scrubbed like the real name (relay/anonymize/names.py), so it may not be part of the handle
    (the handle would then be scrubbed too). Shared by every way of enrolling someone (pair create, CSV
    import, group members)."""
    cleaned: list[str] = []
    if len(nicknames) > MAX_NICKNAMES:
        raise EnrolmentError(f"the {role}'s nicknames: {len(nicknames)} given; at most {MAX_NICKNAMES} are allowed")
    for raw in nicknames:
        nickname = check_text(f"the {role}'s nickname", str(raw), MAX_NICKNAME_CHARS, MAX_NICKNAME_WORDS)
        if not nickname:
            continue
        if "@" in nickname or "<" in nickname or ">" in nickname:
            raise EnrolmentError(f"the {role}'s nickname {nickname!r} may not contain @, < or >")
        if sum(c.isalpha() for c in nickname) < 2:
            raise EnrolmentError(f"the {role}'s nickname {nickname!r} needs at least two letters")
        handle_words = set(re.findall(r"\w+", handle_key(handle)))
        if handle_key(nickname) in handle_key(handle) or any(
                part in handle_words for part in re.findall(r"\w+", handle_key(nickname)) if len(part) >= 3):
            raise EnrolmentError(f"the {role}'s handle must not contain their nickname {nickname!r}")
        if handle_key(nickname) != handle_key(name) and nickname not in cleaned:
            cleaned.append(nickname)
    return tuple(cleaned)


MAX_REASON = 1000  # characters of a coordinator's reason for an ending (pair close, group close, program end)


def clean_reason(reason: str | None) -> str | None:
    """The coordinator's reason on one line, or None; EnrolmentError when it is too long for a notice."""
    if reason is None:
        return None
    text = " ".join(reason.split())
    if len(text) > MAX_REASON:
        raise EnrolmentError(f"the reason is {len(text)} characters long; at most {MAX_REASON} fit in a farewell")
    return text or None


def check_program(settings: Settings, program_id: str) -> None:
    if program_id not in settings.programs:
        known = ", ".join(sorted(settings.programs)) or "none"
        raise EnrolmentError(f"unknown program {program_id!r} (known: {known})")


def language_folder(settings: Settings, program_id: str) -> Path | None:
    """The program's templates folder, whose .po files add languages (None: the shipped ones only)."""
    program = settings.programs.get(program_id)
    return settings.resolve(program.templates) if program is not None and program.templates else None


def check_pair(settings: Settings, request: PairRequest, today: date | None = None) -> PairRequest:
    """The request cleaned up, or EnrolmentError; touches no store. `today`: an end date before it is
    refused (import and the API; `pair create` may still record a past end date), the pair's own or, when it
    has none, the program's: a pair enrolled after its program ended would be welcomed, then ended by the
    next sweep with a farewell."""
    check_program(settings, request.program_id)
    policy = request.policy or None
    if policy is not None:
        check_policy_name(policy, settings)
    end_date = request.end_date or None
    if end_date is not None:
        parsed = check_end_date(end_date)
        if today is not None and parsed < today:
            raise EnrolmentError(f"end date {end_date} is in the past (today is {today.isoformat()})")
        end_date = parsed.isoformat()
    elif today is not None:
        program_end = settings.programs[request.program_id].end_date
        if program_end is not None and program_end < today:
            raise EnrolmentError(f"end date empty: the program's end date {program_end.isoformat()} applies, and it "
                                 f"is in the past (today is {today.isoformat()}); give the pair a later end date "
                                 "or extend the program")
    cadence = request.mentor_cadence
    if cadence is not None:
        try:
            cadence = parse_cadence(cadence)
        except ValueError as exc:
            raise EnrolmentError(f"--mentor-cadence: {exc}") from None
    deliverability = settings.relay.enrolment.check_deliverability
    folder = language_folder(settings, request.program_id)
    mentor = check_person("mentor", request.mentor, deliverability, folder)
    mentee = check_person("mentee", request.mentee, deliverability, folder)
    if mentor.email.casefold() == mentee.email.casefold():
        raise EnrolmentError("the mentor and the mentee must have different addresses")
    if handle_key(mentor.handle) == handle_key(mentee.handle):
        raise EnrolmentError("the mentor and the mentee must have different handles")
    return PairRequest(request.program_id, mentor, mentee, policy, end_date, cadence)


async def enrol_checked(connection: AsyncConnection, settings: Settings, request: PairRequest, now: datetime,
                        actor: str = "cli", aliases: dict[str, str] | None = None) -> Pair:
    """Write one pair checked by `check_pair` in the caller's transaction: its handles against the store,
    fresh aliases, the pair, its `pair_created` event and both welcomes. `aliases` (role -> local part):
    handles and aliases already claimed by the caller for many pairs at once (relay/pair_import.py)."""
    program_id = request.program_id
    if aliases is None:
        aliases = {}
        for role in ROLES:
            person = request.person(role)
            if await handle_taken(connection, program_id, person.handle, person.email):
                raise EnrolmentError(f"the handle {person.handle!r} is already used in program {program_id!r}")
            alias = ids.alias_local_part(person.handle)
            for _ in range(100):  # bounded: a random suffix collides rarely
                if not await alias_taken(connection, alias):
                    break
                alias = ids.alias_local_part(person.handle)
            else:
                raise EnrolmentError("no free alias found; please try again")
            aliases[role] = alias
    values = {}
    for role in ROLES:
        person = request.person(role)
        values[role] = {"email": person.email, "name": person.name, "handle": person.handle, "alias": aliases[role],
                        "timezone": person.timezone, "nicknames": person.nicknames, "language": person.language}
    values["mentor"]["cadence"] = request.mentor_cadence
    try:
        async with connection.begin_nested():
            pair_id = await insert_pair(connection, program_id=program_id, policy=request.policy,
                                        end_date=request.end_date, created_at=now, people=values)
    except IntegrityError:
        raise EnrolmentError("a handle or alias was taken at the same moment; please try again") from None
    await events.record(connection, "pair_created", now, actor=actor, pair_id=pair_id,
                        program=program_id, policy=request.policy,
                        handles={r: request.person(r).handle for r in ROLES})
    pair = await get_pair(connection, pair_id)
    assert pair is not None
    await queue_welcome(connection, settings, pair, now)
    return pair


async def create_pair(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    *,
    program_id: str,
    mentor: Person,
    mentee: Person,
    policy: str | None = None,
    end_date: str | None = None,
    actor: str = "cli",
    mentor_cadence: str | None = None,
    refuse_past_end: bool = False,
) -> Pair:
    now = clock.now()
    request = check_pair(settings, PairRequest(program_id, mentor, mentee, policy, end_date, mentor_cadence),
                         today=now.date() if refuse_past_end else None)
    async with transaction(engine) as connection:
        return await enrol_checked(connection, settings, request, now, actor)
