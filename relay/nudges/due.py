"""Which conversations a nudge sweep needs to look at, found by indexed queries, a page at a time.

A sweep must not read every pair of a large program to find the few that are due. `pairs_due` is the query
for the pairs (by id, after a keyset cursor, `limit` at a time) where some rule can have mail due at `now`,
from each program's own timings (`pair_ids` runs it for one page):

- silence: an active pair with no writing message since `now - pair_silence_after` (a NOT EXISTS over
  ix_messages_pair_time), created before that, unless both check-ins of this silence are claimed (their keys
  record the silence's anchor: ix_notice_keys_pair_kind_anchor);
- unanswered and cadence: an active pair with a mentee's message older than the first nudge's delay
  that no mentor message came after, unless that message's second nudge and escalation are both claimed
  (looked up by key); any such message when the mentor keeps writing days;
- ending, farewell and the end itself: a pair whose end date (its own, else the program's) is at most
  `ending_notice_before` away or has passed.

The set is a superset of what the rules send (the rules, relay/nudges/rules/, decide each piece of mail):
messages are compared by when the relay took them in, and a rule counts a wait from later still (a held
message's release, a mentor's return from away: relay/nudges/timing.waits_since);
only pairs outside it are sure to have nothing due. Leaving out the pairs whose mail was all sent is what
keeps the hourly sweep short: a silent pair, or a mentee waiting weeks, would otherwise be planned again every
hour, to find every key taken. `ended_candidates` finds the ongoing pairs and groups whose end
may have come (relay/nudges/lifecycle.end_due decides), and `group_ids` the groups a sweep plans for: the
active ones, and those (active, paused, or ended lately) whose end is at most `ending_notice_before` away or
has passed (ending soon, farewell: relay/nudges/rules/groups.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, bindparam, case, cast, exists, false, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.config import ProgramConfig, Settings
from relay.nudges.activity import NOT_WRITING
from relay.nudges.lifecycle import FAREWELL_WITHIN, ONGOING
from relay.nudges.rules import silence, unanswered
from relay.store.pairs import ROLES
from relay.store.schema import UTCDateTime, members, messages, notice_keys, pairs

SLACK = timedelta(days=2)  # end dates are local days: a margin for every time zone
LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)  # before any message: a pair no mentor has written in


def _writing_by(role: str, pair_column: Any) -> tuple[Any, Any]:
    """(messages alias, condition): a message of the pair written (not an automatic reply) by `role`."""
    message, sender = messages.alias(), members.alias()
    return message, and_(message.c.pair_id == pair_column, message.c.decision.not_in(NOT_WRITING),
                         sender.c.id == message.c.sender_id, sender.c.role == role)


def _checked_in() -> Any:
    """The pair's current silence has both its check-ins: their keys record the silence's anchor (the pair's
    last message, else its start: relay/nudges/rules/silence.py), and it is still the pair's anchor."""
    last = messages.alias()
    latest = (select(func.max(last.c.received_at))
              .where(last.c.pair_id == pairs.c.id, last.c.decision.not_in(NOT_WRITING))
              .correlate(pairs).scalar_subquery())
    claimed = (select(func.count()).select_from(notice_keys)
               .where(notice_keys.c.pair_id == pairs.c.id, notice_keys.c.kind == silence.KIND,
                      notice_keys.c.anchor_at == func.coalesce(latest, pairs.c.created_at))
               .correlate(pairs).scalar_subquery())
    return claimed >= len(ROLES)


def _silent(program: ProgramConfig, now: datetime) -> Any:
    cutoff = now - program.responsiveness.pair_silence_after
    message = messages.alias()
    recent = exists().where(message.c.pair_id == pairs.c.id, message.c.received_at > cutoff,
                            message.c.decision.not_in(NOT_WRITING)).correlate(pairs)
    return and_(pairs.c.status == "active", pairs.c.created_at <= cutoff, ~recent, ~_checked_in())


def _stages_claimed(message: Any) -> Any:
    """Every piece of mail the unanswered rule sends about this waiting message is claimed: its second nudge
    (the first was sent or passed over before it) and its escalation, looked up by key (the table's primary
    key), each key made in SQL as unanswered.key makes it in Python."""
    def key(kind: str) -> Any:
        return literal(f"{kind}:") + cast(message.c.pair_id, String) + literal(":") + message.c.id

    return and_(*(exists().where(notice_keys.c.key == key(kind)).correlate(message)
                  for kind in (unanswered.STAGES[-1], unanswered.ESCALATION)))


def _waiting(program: ProgramConfig, now: datetime) -> Any:
    rules = program.responsiveness
    cutoff = now - min(rules.nudge_mentor_after, rules.second_nudge_after, rules.escalate_after)
    # A mentee's message waits while no mentor message came after it: it is at or after the mentor's last
    # message. That time is found once per pair, and the mentee's messages since then read as one range of
    # ix_messages_pair_time (asking, for each mentee message, whether a mentor message came after it read
    # every message of the pair again for each, most of an hourly sweep's query).
    mentor_message, by_mentor = _writing_by("mentor", pairs.c.id)
    answered_up_to = func.coalesce(
        select(func.max(mentor_message.c.received_at)).where(by_mentor).correlate(pairs).scalar_subquery(),
        literal(LONG_AGO, UTCDateTime))
    mentee_message, by_mentee = _writing_by("mentee", pairs.c.id)
    cadence = members.alias()
    keeps_days = exists().where(cadence.c.pair_id == pairs.c.id, cadence.c.role == "mentor",
                                cadence.c.cadence.is_not(None)).correlate(pairs)
    # old enough for a first stage, and not every stage sent already (a mentor keeping writing days is looked
    # at whatever the message's age: the day's digest)
    old_enough = or_(and_(mentee_message.c.received_at <= cutoff, ~_stages_claimed(mentee_message)), keeps_days)
    return and_(pairs.c.status == "active",
                exists().where(by_mentee, mentee_message.c.received_at >= answered_up_to, old_enough
                               ).correlate(pairs))


def _end_by(program: ProgramConfig, day: str) -> Any:
    """The pair's end date (its own, else the program's) is `day` (YYYY-MM-DD) or earlier."""
    own = and_(pairs.c.end_date.is_not(None), pairs.c.end_date <= day)
    if program.end_date is not None and program.end_date.isoformat() <= day:
        return or_(own, pairs.c.end_date.is_(None))
    return own


def _ending(program: ProgramConfig, now: datetime) -> Any:
    return _end_by(program, (now + program.responsiveness.ending_notice_before + SLACK).date().isoformat())


def _in_own_program(settings: Settings, condition: Callable[[ProgramConfig], Any]) -> Any:
    """`condition` of the pair's own program, as one CASE on the pair's program rather than an OR of
    (program = X AND ...): SQLite and PostgreSQL answered that OR through the program index, then sorted, so
    that every page read every pair above its cursor (at 100k pairs, 3.1 s for the seven pages of an hourly
    sweep, against 0.9 s for one pass). A CASE leaves them the primary key, read in order from the cursor
    until the page is full. Pairs of a program not configured: false."""
    per_program = {program.id: condition(program) for program in settings.programs.values()}
    return case(per_program, value=pairs.c.program_id, else_=false()) if per_program else false()


def _looked_at(now: datetime) -> Any:
    """Ongoing pairs, and those that ended lately (for the farewell)."""
    return or_(pairs.c.status.in_(ONGOING),
               and_(pairs.c.status == "ended", pairs.c.closed_at >= now - FAREWELL_WITHIN))


def pairs_due(settings: Settings, now: datetime, *, limit: int = 200) -> Any:
    """The query for up to `limit` ids, ascending, above the bound parameter `after`, of pairs where mail may
    be due at `now`. A sweep builds it once and runs it a page at a time (building it, for each program, was a
    sixth of an hourly sweep's time when it was built for every page)."""
    due = _in_own_program(settings, lambda program: or_(_silent(program, now), _waiting(program, now),
                                                         _ending(program, now)))
    return (select(pairs.c.id)
            .where(pairs.c.kind == "pair", pairs.c.id > bindparam("after"), _looked_at(now), due)
            .order_by(pairs.c.id).limit(limit))


async def pair_ids(connection: AsyncConnection, query: Any, *, after: int = 0) -> list[int]:
    """The ids of the next page of `query` (pairs_due): those above `after`."""
    return list((await connection.execute(query, {"after": after})).scalars())


async def ended_candidates(connection: AsyncConnection, settings: Settings, now: datetime, *, after: int = 0,
                           limit: int = 200) -> list[int]:
    """Ongoing pairs and groups whose end date (theirs, else the program's) may have passed."""
    today = (now + SLACK).date().isoformat()
    query = (select(pairs.c.id)
             .where(pairs.c.kind.in_(("pair", "group")), pairs.c.id > after, pairs.c.status.in_(ONGOING),
                    _in_own_program(settings, lambda program: _end_by(program, today)))
             .order_by(pairs.c.id).limit(limit))
    return list((await connection.execute(query)).scalars())


async def group_ids(connection: AsyncConnection, settings: Settings, now: datetime, *, after: int = 0,
                    limit: int = 200) -> list[int]:
    """Groups of the configured programs a sweep plans for: every active one (their rules look at each), and
    those, paused or ended lately too, whose end is near or has passed (its ending soon and farewell)."""
    ending = _in_own_program(settings, lambda program: _ending(program, now))
    query = (select(pairs.c.id)
             .where(pairs.c.kind == "group", pairs.c.id > after,
                    or_(pairs.c.status == "active", and_(_looked_at(now), ending)),
                    pairs.c.program_id.in_(list(settings.programs)))
             .order_by(pairs.c.id).limit(limit))
    return list((await connection.execute(query)).scalars())
