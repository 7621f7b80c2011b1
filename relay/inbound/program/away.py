"""Away mode: a participant (by mail to away@<domain>) or a coordinator (`pair away`) says that a
member is away through a date, or back. The partner is told, the member gets a confirmation, nudges
for them pause (relay/nudges/timing.is_away) and their automatic replies are not announced again. The date
stays stored after the period ends ("back" stores yesterday's date when the member was away): the reminders
count a mentee's message that waited through the period from the member's return.
In a group, the members of the other role are told (a mentor's mentees, a mentee's mentors): they are
the ones who wait for an answer from them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import notices
from relay.config import Settings
from relay.inbound.program.addresses import Incoming, explain
from relay.languages import locale, normalise
from relay.notices import notice
from relay.notices.programs import audience, folder, participant_language
from relay.notices.when import format_day
from relay.nudges.timing import is_away, local_date, zone_of
from relay.store import events
from relay.store.conversations import Conversation
from relay.store.pairs import Member, Pair
from relay.store.schema import members

_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
# "back" in the shipped languages; a subject that starts with one of them (after a reply prefix) says so.
_BACK_WORDS = ("back", "i am back", "i'm back", "de vuelta", "ya volví", "ya volvi", "volví", "volvi", "he vuelto",
               "regresé", "regrese", "de retour", "je suis de retour", "retour", "вернулся", "вернулась",
               "я вернулся", "я вернулась", "снова здесь", "عدت", "لقد عدت", "رجعت")
_BACK = re.compile(r"^\s*(?:(?:re|aw|rv|tr|ответ|رد)\s*:\s*)*(?:"
                   + "|".join(re.escape(w) for w in sorted(_BACK_WORDS, key=len, reverse=True)) + r")(?!\w)",
                   re.IGNORECASE)
# A date written the local way: 20/12/2026 or 20.12.2026 (day first: every shipped language but English).
_DAY_FIRST = re.compile(r"(?<![\d/.])(\d{1,2})[./](\d{1,2})[./](\d{4})(?![\d/.])")


class AwayError(Exception):
    """A request that cannot be carried out: the text (English) for staff on the command line and the
    console; `problem` and `day` for the participant's notice, written in their language (away_unclear)."""

    def __init__(self, text: str, problem: str = "format", day: str = "") -> None:
        super().__init__(text)
        self.problem = problem  # format | not_a_date | passed | ended
        self.day = day


@dataclass(frozen=True)
class Request:
    until: date | None  # None: back


def _digits(text: str) -> str:
    """Arabic-Indic and other decimal digits as ASCII ("٢٠" -> "20")."""
    return "".join(str(unicodedata.digit(char)) if char.isdigit() and not char.isascii() else char for char in text)


@lru_cache(maxsize=16)
def _month_names(language: str) -> tuple[re.Pattern[str], dict[str, int]]:
    """"20 de diciembre de 2026", "20 décembre", "20 декабря 2026", "20 ديسمبر 2026", "20 December 2026":
    the month names of the language (Babel's, every form) and English, the year optional."""
    names: dict[str, int] = {}
    for name in dict.fromkeys(("en", language)):
        months = locale(name).months
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, month in months[context][width].items():
                    names.setdefault(month.lower().rstrip("."), number)
    alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\d)(\d{{1,2}})\s*(?:de\s+)?({alternation})\.?(?:,?\s*(?:de\s+)?(\d{{4}}))?(?!\w)",
                         re.IGNORECASE)
    return pattern, names


def _local_date(subject: str, language: str, today: date | None) -> tuple[str, date | None] | None:
    """A date written the reader's way (the text as written, and the date or None when it is no calendar date)."""
    text = _digits(subject)
    if normalise(language).split("_")[0] != "en":
        numeric = _DAY_FIRST.search(text)
        if numeric is not None:
            day, month, year = (int(g) for g in numeric.groups())
            return numeric.group(), _valid(year, month, day)
    pattern, names = _month_names(normalise(language))
    named = pattern.search(text)
    if named is None:
        return None
    day, month = int(named.group(1)), names[named.group(2).lower()]
    if named.group(3):
        return named.group(), _valid(int(named.group(3)), month, day)
    year = (today or date.today()).year
    found = _valid(year, month, day)
    if found is not None and today is not None and found < today:  # "until 3 January" written in December
        found = _valid(year + 1, month, day)
    return named.group(), found


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_subject(subject: str, language: str = "en", today: date | None = None) -> Request:
    """"until 2026-12-03" (any text around an ISO date), a date written the reader's way ("hasta el 20 de
    diciembre", "jusqu'au 20/12/2026", "до 20 декабря"), or "back" (or "de vuelta", "de retour", "вернулся",
    "عدت"). `today`: the year of a date written without one."""
    if _BACK.match(subject):
        return Request(None)
    match = _DATE.search(_digits(subject))
    if match is None:
        local = _local_date(subject, language, today)
        if local is not None:
            written, day = local
            if day is None:
                raise AwayError(f"{written} is not a date of the calendar", "not_a_date", written)
            return Request(day)
        raise AwayError('the subject should be "until YYYY-MM-DD" (for example "until 2026-12-03") or "back"',
                        "format")
    try:
        return Request(date.fromisoformat(match.group(1)))
    except ValueError:
        raise AwayError(f"{match.group(1)} is not a date of the calendar", "not_a_date", match.group(1)) from None


def check(settings: Settings, pair: Conversation, member: Member, request: Request, now: datetime) -> None:
    """Raise AwayError unless the request can be carried out (a date today or later, where they are)."""
    zone = zone_of(member, settings.programs[pair.program_id])
    if request.until is not None and request.until < local_date(now, zone):
        raise AwayError(f"{request.until.isoformat()} has already passed", "passed", request.until.isoformat())


def stored_until(settings: Settings, conversation: Conversation, member: Member, request: Request,
                 now: datetime) -> str | None:
    """What the member's away_until becomes: the last day away asked for; on "back" while away, yesterday
    where they are (their away period ended today: a mentee's message that waited through it waits from
    their return, relay/nudges/timing.waits_since), and otherwise what it was (no away date, or one past)."""
    if request.until is not None:
        return request.until.isoformat()
    zone = zone_of(member, settings.programs[conversation.program_id])
    if is_away(member, now, zone):
        return (local_date(now, zone) - timedelta(days=1)).isoformat()
    return member.away_until


async def apply(connection: AsyncConnection, settings: Settings, pair: Pair, member: Member, request: Request,
                now: datetime, *, actor: str, message_id: str | None = None) -> None:
    """Set or clear one member's away date in one pair, tell the partner and confirm to the member."""
    program = settings.programs[pair.program_id]
    check(settings, pair, member, request, now)
    until = request.until.isoformat() if request.until else None
    await connection.execute(update(members).where(members.c.id == member.id)
                             .values(away_until=stored_until(settings, pair, member, request, now)))
    partner = pair.partner_of(member)
    for reader, name in ((partner, "away_partner"), (member, "away_confirmation")):
        language = participant_language(program, reader)
        mail = notice(name, language, folder=folder(settings, program), audience=audience(program, reader),
                      program_name=program.name,
                      domain=settings.relay.domain, handle=member.handle, partner_handle=partner.handle,
                      role=member.role, until=format_day(request.until, language) if request.until else None)
        sent = notices.compose(domain=settings.relay.domain, program_name=program.name, to=reader.email,
                               subject=mail.subject, body=mail.text, now=now, language=mail.language,
                               reply_to=notices.help_address(settings.relay.domain))
        await notices.queue(connection, sent, domain=settings.relay.domain, now=now, pair_id=pair.id,
                            message_id=message_id)
    await events.record(connection, "away.set" if until else "away.cleared", now, actor=actor, pair_id=pair.id,
                        message_id=message_id, role=member.role, until=until)


async def apply_group(connection: AsyncConnection, settings: Settings, group: Conversation, member: Member,
                      request: Request, now: datetime, *, actor: str, message_id: str | None = None) -> None:
    """Set or clear one member's away date in one group, tell the members of the other role and confirm
    to the member (whose confirmation names the group where a pair's names the partner)."""
    program = settings.programs[group.program_id]
    check(settings, group, member, request, now)
    until = request.until.isoformat() if request.until else None
    await connection.execute(update(members).where(members.c.id == member.id)
                             .values(away_until=stored_until(settings, group, member, request, now)))
    told = [m for m in group.others(member) if m.role != member.role]
    for reader, name in [*((m, "away_partner") for m in told), (member, "away_confirmation")]:
        language = participant_language(program, reader)
        mail = notice(name, language, folder=folder(settings, program), audience=audience(program, reader),
                      program_name=program.name,
                      domain=settings.relay.domain, handle=member.handle, partner_handle=group.name or "",
                      role=member.role, until=format_day(request.until, language) if request.until else None)
        sent = notices.compose(domain=settings.relay.domain, program_name=program.name, to=reader.email,
                               subject=mail.subject, body=mail.text, now=now, language=mail.language,
                               reply_to=notices.help_address(settings.relay.domain))
        await notices.queue(connection, sent, domain=settings.relay.domain, now=now, pair_id=group.id,
                            message_id=message_id)
    await events.record(connection, "away.set" if until else "away.cleared", now, actor=actor, pair_id=group.id,
                        message_id=message_id, role=member.role, until=until)


async def handle(connection: AsyncConnection, incoming: Incoming) -> None:
    """Mail to away@: the subject says until when, or "back"; for every pair and group the sender is in."""
    ongoing = [(pair, member) for pair, member in incoming.enrolments if pair.status in ("active", "paused")]
    try:
        language = "en"  # the sender's, for a date written their way
        if incoming.enrolments:
            pair, member = incoming.enrolments[0]
            language = participant_language(incoming.settings.programs.get(pair.program_id), member)
        request = parse_subject(incoming.subject, language, incoming.now.date())
        if not ongoing:
            raise AwayError("your conversation has ended, so there is nobody to tell", "ended")
        for pair, member in ongoing:
            check(incoming.settings, pair, member, request, incoming.now)
    except AwayError as exc:
        await explain(connection, incoming, "away_unclear", problem=exc.problem, day=exc.day)
        return
    for pair, member in ongoing:
        if isinstance(pair, Pair):
            await apply(connection, incoming.settings, pair, member, request, incoming.now, actor="mail",
                        message_id=incoming.message_id)
        else:
            await apply_group(connection, incoming.settings, pair, member, request, incoming.now, actor="mail",
                              message_id=incoming.message_id)
