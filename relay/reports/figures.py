"""A program's figures for coordinators, researchers and funders, computed from the store.

Definitions (the report says what it counts):
- pairs: by status: closed (closed by an admin), ended (reached their end date), paused (after a concern,
  until a coordinator resumes them); the pairs still running are silent (no message for `silent_after`, 7 days
  by default, counted from the last message or, with none, from enrolment) or active (the others).
- messages: every message a participant wrote to the relay (held and rejected ones included, automatic
  replies not), per ISO week (Monday to Sunday, UTC) and pair; per_pair is that week's messages divided
  by the pairs open during the week.
- reply time: for each mentee message that reached the mentor (not rejected, not still held, not an
  automatic reply), the time from its arrival to the mentor's next message in the pair. Median and p90
  (linear interpolation) over the answered ones; the 48-hour share counts the messages answered within
  48 hours among those whose 48 hours are over (or which were answered within them).
- nudges: events whose kind starts with "nudge."; escalations are "nudge.escalation", the others are
  reminders to the mentor; a reminder is followed by a reply when the mentor wrote within 48 hours of it
  (share among the reminders whose 48 hours are over or which were followed).
- moderation: the program's hold queue: messages held, still waiting, released, rejected (by a moderator);
  urgent: held as a possible safeguarding concern; review time from holding to the decision (median, p90);
  rejected_automatically: the participants' messages whose decision was "reject" (a policy rejected them with
  nobody's review; shown in the queue's history and, under notify_rejections, reported to the moderators),
  not counted among the held.
- groups: the program's groups and communities (kind group | community), each with its messages per
  member by handle (every message the member wrote in it, to the whole group or privately to one member,
  held and rejected ones included, automatic replies not) and the mentor reply time in the group: for each
  mentee message to the whole group or privately to a mentor that reached its readers (not rejected, not
  still held), the time to the next message of any of the group's mentors to the whole group or privately
  to that mentee; median, p90 and the 48-hour share as for pairs. The section's own `reply_time` pools all
  the program's groups. Pairs' figures above count pairs only.
- attempts: refusals of strangers writing to a pair's alias ("refused", reason "stranger"); spoofing: refused
  with reason "spoofing", plus decisions with a "spoofing" finding (held for review): a sender-authentication
  check that ran and failed. Mail that could not be verified (no records, DNS down) is not spoofing and is
  counted apart as unverified.
"""

from __future__ import annotations

import asyncio
import json
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.clock import Clock
from relay.store import reporting
from relay.store.reporting import DAY_US, hours, to_us, week_of, week_start
from relay.store.schema import held, members, messages, pairs

WINDOW = timedelta(hours=48)
SILENT_AFTER = timedelta(days=7)
ESCALATION = "nudge.escalation"
_US = timedelta(microseconds=1)
NEVER = 2**62  # the closing time of a pair that is not closed, in microseconds


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _spread_sorted(values: Sequence[float]) -> dict[str, float | None]:
    """Median and p90 (inclusive linear interpolation, as statistics.quantiles) in hours of values sorted in
    increasing order, rounded to 0.01; None without values."""
    n = len(values)
    if not n:
        return {"median_hours": None, "p90_hours": None}
    median = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    if n == 1:
        p90 = values[0]
    else:
        j, delta = divmod(9 * (n - 1), 10)
        p90 = (values[j] * (10 - delta) + values[j + 1] * delta) / 10
    return {"median_hours": round(median, 2), "p90_hours": round(p90, 2)}


def _spread(values: list[float]) -> dict[str, float | None]:
    return _spread_sorted(sorted(values))


class _Hours(Sequence[float]):
    """Microseconds sorted in increasing order, read as hours (only the few values a spread needs)."""

    def __init__(self, us: Sequence[int]) -> None:
        self.us = us

    def __len__(self) -> int:
        return len(self.us)

    def __getitem__(self, index: Any) -> Any:
        return hours(self.us[index])


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _week_start(when: datetime) -> date:
    day = when.date()
    return day - timedelta(days=day.weekday())


def _week_name(start: date) -> str:
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class _Message:
    """A group's message (see _groups)."""

    pair_id: int
    role: str
    decision: str
    at: datetime
    reached: bool  # its readers received it (or will: not rejected, not still held)
    sender_id: int = 0
    recipient_id: int | None = None  # a group's: the one member of a private word; None: the whole group


async def program_figures(engine: AsyncEngine, clock: Clock, program_id: str,
                          silent_after: timedelta = SILENT_AFTER) -> dict[str, Any]:
    """The figures, from aggregate queries (relay/store/reporting.py): the database counts and sorts, Python
    keeps the program's pairs (a few numbers each, in arrays), each week's message counts by pair and the
    sorted reply and review times as whole microseconds. `messages.weeks[].by_pair` is a read-only mapping
    that lists its week's open pairs when read (render.write_json and iter_rows stream it)."""
    now = clock.now()

    async def mentors() -> set[int]:
        async with engine.connect() as connection:
            return await reporting.mentors(connection, program_id)

    async def pairs_and_messages() -> tuple[_Roster, _Weekly, dict[str, Any], dict[str, Any]]:
        async with engine.connect() as connection:
            async with asyncio.TaskGroup() as first:
                mentors_read = first.create_task(mentors())  # meanwhile, on a connection of its own
                roster = await _Roster.read(connection, program_id)
            weekly, reply_time = await _read_messages(engine, program_id, roster, mentors_read.result(), now)
            return roster, weekly, reply_time, await _moderation(connection, program_id, weekly.rejected)

    async def nudges_and_attempts() -> tuple[dict[str, Any], dict[str, int]]:
        async with engine.connect() as connection:
            nudges = await _nudges(connection, program_id, now)
            attempts = _Attempts()
            async for chunk in reporting.refusals(connection, program_id):
                for kind, detail in chunk:
                    attempts.add(kind, detail)
            return nudges, attempts.figures()

    # Three connections at once: the database answers the reads side by side (on SQLite each connection
    # runs in its own thread, outside the interpreter's lock), so the report takes about as long as its
    # longest part (the pairs' messages: one read for the weekly counts and the reply times), not their sum.
    async with asyncio.TaskGroup() as parts:
        messages_part = parts.create_task(pairs_and_messages())
        nudges_part = parts.create_task(nudges_and_attempts())
        groups_part = parts.create_task(_groups(engine, program_id, now))
    roster, weekly, reply_time, moderation = messages_part.result()
    nudges, attempts = nudges_part.result()
    return {
        "program": program_id,
        "generated_at": now.isoformat(),
        "pairs": roster.states(weekly.last, now, silent_after),
        "messages": {"total": weekly.total, "weeks": _weeks(roster, weekly, now)},
        "reply_time": reply_time,
        "nudges": nudges,
        "moderation": moderation,
        "attempts": attempts,
        "groups": groups_part.result(),
    }


class _Roster:
    """The program's pairs in id order, a few integers each: id, created and closed (epoch microseconds)."""

    def __init__(self) -> None:
        self.ids: array[int] = array("q")
        self.created: array[int] = array("q")
        self.closed: array[int] = array("q")  # NEVER when not closed
        self.statuses: Counter[str] = Counter()  # closed, ended, paused
        self.running: bytearray = bytearray()  # 1: neither closed, ended nor paused (active or silent)
        self._keys: dict[str, tuple[list[str], list[str]]] = {}  # form -> each pair's key, and with 0

    @classmethod
    async def read(cls, connection: AsyncConnection, program_id: str) -> _Roster:
        roster = cls()
        async for chunk in reporting.pair_rows(connection, program_id):
            for pair_id, status, created, closed in chunk:
                roster.ids.append(pair_id)
                roster.created.append(created)
                roster.closed.append(NEVER if closed is None else closed)
                stopped = status in ("closed", "ended", "paused")
                roster.running.append(0 if stopped else 1)
                if stopped:
                    roster.statuses[status] += 1
        roster.sorted_created = array("q", sorted(roster.created))
        roster.closed_pairs = [index for index, closed in enumerate(roster.closed) if closed != NEVER]
        return roster

    sorted_created: array[int]
    closed_pairs: list[int]  # indexes of the pairs with a closing time

    def states(self, last: array[int], now: datetime, silent_after: timedelta) -> dict[str, int]:
        """Pairs by state; a running pair is silent after `silent_after` without a message (or since it was
        made, without any)."""
        before = to_us(now) - silent_after // _US
        silent = sum(1 for running, at, created in zip(self.running, last, self.created, strict=True)
                     if running and (at if at >= 0 else created) <= before)
        running = sum(self.running)
        return {"total": len(self.ids), "active": running - silent, "silent": silent,
                "paused": self.statuses["paused"], "ended": self.statuses["ended"],
                "closed": self.statuses["closed"]}

    def keys(self, form: str) -> tuple[list[str], list[str]]:
        """`form` ('"{}": ' for JSON, '{},' for CSV) of each pair's id, and the same followed by 0 (a week's
        entry of a pair that did not write): made once for every week's by_pair."""
        found = self._keys.get(form)
        if found is None:
            keys = [form.format(pair_id) for pair_id in self.ids]
            found = self._keys[form] = (keys, [key + "0" for key in keys])
        return found

    def open_count(self, begin: int, end: int) -> int:
        """Pairs open during [begin, end): made before its end, not closed before its beginning."""
        made = bisect_left(self.sorted_created, end)
        gone = sum(1 for index in self.closed_pairs if self.created[index] < end and self.closed[index] < begin)
        return made - gone


class _Weekly:
    """Messages by week: totals, and each week's counts by pair (the pairs with messages, in id order)."""

    def __init__(self, size: int) -> None:
        self.total = 0
        self.rejected = 0  # messages a policy rejected at intake (moderation's rejected_automatically)
        self.last: array[int] = array("q", [-1]) * size  # a pair's last message (epoch us), -1: none
        self.per_week: Counter[int] = Counter()
        self.by_pair: dict[int, tuple[array[int], array[int]]] = {}  # week -> (pairs' indexes, counts)

    def add(self, index: int, week: int, count: int) -> None:
        """`count` messages of the pair at roster `index` in `week`."""
        found = self.by_pair.get(week)
        if found is None:
            found = self.by_pair[week] = (array("q"), array("q"))
        indexes, counts = found
        if indexes and indexes[-1] == index:  # the pair's messages of the week came in two runs
            counts[-1] += count
        else:
            indexes.append(index)
            counts.append(count)

    def finish(self) -> None:
        """The weeks' and the whole's totals, from the counts by pair."""
        for week, (_, counts) in self.by_pair.items():
            self.per_week[week] = sum(counts)
        self.total = sum(self.per_week.values())


class _MessageReader:
    """The weekly counts and the mentors' reply times (the definitions above), from one read of the pairs'
    messages in each pair's order of arrival (reporting.each_pair_message), handed over a chunk at a time: a
    mentee message that reached the mentor waits for the mentor's next message in the pair, the first mentor
    message after it. Python does little per message: a few comparisons, a count, and one append per mentee
    message (the chunk's loop keeps its state in local variables, stored back at its end)."""

    def __init__(self, roster: _Roster, mentors: set[int], now: datetime) -> None:
        self.weekly = _Weekly(len(roster.ids))
        self.ids, self.mentors = roster.ids, mentors
        self.window = WINDOW // _US
        self.recent = to_us(now) - self.window  # a message after this one has not had its 48 hours
        self.waits: list[int] = []  # microseconds of each answered mentee message
        self.unanswered: list[int] = []  # epoch us of each mentee message with no mentor message after it
        self.pending: list[int] = []  # the current pair's mentee messages waiting for the mentor
        self.late = 0  # answered after 48 hours, whose 48 hours are not over (not due)
        self.index = 0  # the current pair's index in the roster
        self.pair = self.week = -1
        self.begin = self.end = self.count = 0  # the current run: `count` messages of `pair` in `week`,
        # [begin, end) in epoch us
        self.pair_last = -1  # the pair's last message

    def add(self, chunk: Sequence[Any]) -> None:
        ids, mentors, window, recent = self.ids, self.mentors, self.window, self.recent
        waits, unanswered, pending, weekly = self.waits, self.unanswered, self.pending, self.weekly
        add, last = weekly.add, weekly.last
        index, late, pair, week = self.index, self.late, self.pair, self.week
        begin, end, count, pair_last = self.begin, self.end, self.count, self.pair_last
        for pair_id, at, sender, state in chunk:
            if pair_id != pair or not begin <= at < end:
                if count:
                    add(index, week, count)
                if pair_id != pair:
                    if pair_last > last[index]:
                        last[index] = pair_last
                    unanswered.extend(pending)
                    pending.clear()
                    pair, pair_last = pair_id, -1
                    while ids[index] != pair_id:
                        index += 1
                week = week_of(at)
                begin = (week * 7 - 3) * DAY_US
                end, count = begin + 7 * DAY_US, 0
            count += 1
            if at > pair_last:
                pair_last = at
            if state:
                weekly.rejected += state == reporting.REJECTED
            if sender in mentors:
                for mentee_at in pending:
                    waited = at - mentee_at
                    waits.append(waited)
                    late += waited > window and mentee_at > recent
                pending.clear()
            elif not state:
                pending.append(at)
        self.index, self.late, self.pair, self.week = index, late, pair, week
        self.begin, self.end, self.count, self.pair_last = begin, end, count, pair_last

    def finish(self) -> tuple[_Weekly, dict[str, Any]]:
        weekly, waits, unanswered = self.weekly, self.waits, self.unanswered
        if self.count:
            weekly.add(self.index, self.week, self.count)
            if self.pair_last > weekly.last[self.index]:
                weekly.last[self.index] = self.pair_last
        weekly.finish()
        unanswered.extend(self.pending)
        waits.sort()
        within = bisect_right(waits, self.window)
        due = len(waits) - self.late + sum(1 for at in unanswered if at <= self.recent)
        return weekly, {"mentee_messages": len(waits) + len(unanswered), "answered": len(waits),
                        **_spread_sorted(_Hours(waits)), "answered_within_48h": within,
                        "share_within_48h": _share(within, due)}


async def _read_messages(engine: AsyncEngine, program_id: str, roster: _Roster, mentors: set[int],
                         now: datetime) -> tuple[_Weekly, dict[str, Any]]:
    """The weekly counts and the mentors' reply times (_MessageReader)."""
    reader = _MessageReader(roster, mentors, now)
    await reporting.each_pair_message(engine, program_id, reader.add)
    return reader.finish()


class WeekPairs(Mapping[str, int]):
    """One week's messages by open pair (str(pair id) -> count, 0 included), in pair order, listed when
    read: the pairs made before the week's end and not closed before its beginning."""

    def __init__(self, roster: _Roster, begin: int, end: int, counts: tuple[array[int], array[int]] | None,
                 size: int) -> None:
        self.roster, self.begin, self.end, self.size = roster, begin, end, size
        self.counts = counts or (array("q"), array("q"))

    def _indexes(self) -> Iterable[int]:
        """The roster indexes of the open pairs, in id order."""
        roster, begin, end = self.roster, self.begin, self.end
        if self.size == len(roster.ids):
            return range(self.size)
        return [index for index, (created, closed) in enumerate(zip(roster.created, roster.closed, strict=True))
                if created < end and closed >= begin]

    def _counts(self) -> list[int]:
        """Messages of every pair of the roster this week, by roster index."""
        counts = [0] * len(self.roster.ids)
        for index, count in zip(*self.counts, strict=True):
            counts[index] = count
        return counts

    def pairs(self) -> Iterator[tuple[int, int]]:
        """(pair id, messages) of the open pairs, in id order."""
        ids, counts = self.roster.ids, self._counts()
        return ((ids[index], counts[index]) for index in self._indexes())

    def entries(self, form: str) -> list[str]:
        """The entries of the open pairs in id order, each `form` of its id followed by its count
        (render.write_json: '"12": 3', write_csv: '12,3'): a copy of every pair's entry with 0 (made once),
        with the pairs that wrote this week written over; a year of a large program has millions of them,
        most of them 0."""
        keys, zeros = self.roster.keys(form)
        entries = zeros.copy()
        for index, count in zip(*self.counts, strict=True):
            entries[index] = keys[index] + str(count)
        if self.size == len(keys):
            return entries
        return list(map(entries.__getitem__, self._indexes()))

    def json_entries(self) -> list[str]:
        """The entries as json.dumps writes them ('"12": 3')."""
        return self.entries('"{}": ')

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[str]:
        return (str(pair_id) for pair_id, _ in self.pairs())

    def __getitem__(self, key: str) -> int:
        for pair_id, count in self.pairs():
            if str(pair_id) == key:
                return count
        raise KeyError(key)

    def items(self) -> ItemsView[str, int]:
        return _WeekItems(self)


class _WeekItems(ItemsView[str, int]):
    _mapping: WeekPairs

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return ((str(pair_id), count) for pair_id, count in self._mapping.pairs())


def _weeks(roster: _Roster, weekly: _Weekly, now: datetime) -> list[dict[str, Any]]:
    """Each week from the first pair's to now's: messages, open pairs, and by pair (WeekPairs)."""
    found: list[dict[str, Any]] = []
    if not roster.ids:
        return found
    start = week_start(week_of(min(roster.created)))
    while start <= _week_start(now):
        begin = to_us(datetime.combine(start, time.min, tzinfo=now.tzinfo))
        end = begin + timedelta(days=7) // _US
        week = (start - reporting.WEEK_ZERO).days // 7
        size = roster.open_count(begin, end)
        total = weekly.per_week[week]
        found.append({"week": _week_name(start), "pairs_open": size, "messages": total,
                      "per_pair": round(total / size, 2) if size else None,
                      "by_pair": WeekPairs(roster, begin, end, weekly.by_pair.get(week), size)})
        start += timedelta(days=7)
    return found


async def _nudges(connection: AsyncConnection, program_id: str, now: datetime) -> dict[str, Any]:
    kinds = await reporting.nudge_kinds(connection, program_id)
    followed, due = await reporting.reminders_followed(connection, program_id, now, WINDOW, ESCALATION)
    escalations = kinds.get(ESCALATION, 0)
    return {"sent": sum(kinds.values()) - escalations, "escalations": escalations,
            "by_kind": dict(sorted(kinds.items())), "followed_by_reply_within_48h": followed,
            "share_followed_within_48h": _share(followed, due)}


async def _moderation(connection: AsyncConnection, program_id: str, rejected_automatically: int) -> dict[str, Any]:
    """The hold queue's figures. `rejected_automatically` counts from the messages' decisions: a rejection at
    intake has a row in the queue's history only since the safeguarding work (migration 0012), and none on
    some paths."""
    states: Counter[str] = Counter()
    reviews: array[int] = array("q")
    count = urgent = 0
    async for chunk in reporting.holds(connection, program_id):
        for state, severity, automatic, review in chunk:
            if automatic:
                continue
            count += 1
            states[state] += 1
            urgent += severity == "urgent"
            if review is not None:
                reviews.append(review)
    return {"held": count, "waiting": states["held"], "released": states["released"],
            "rejected": states["rejected"], "urgent": urgent, "review_time": _spread_sorted(_Hours(reviews)),
            "rejected_automatically": rejected_automatically}


async def _groups(engine: AsyncEngine, program_id: str, now: datetime) -> dict[str, Any]:
    """The program's groups and communities: messages per member by handle, mentor reply times."""
    async with engine.connect() as connection:
        group_rows = (await connection.execute(select(pairs).where(
            pairs.c.program_id == program_id, pairs.c.kind.in_(["group", "community"])).order_by(pairs.c.id))).all()
        group_ids = [row.id for row in group_rows]
        people = (await connection.execute(
            select(members.c.id, members.c.pair_id, members.c.handle, members.c.role)
            .where(members.c.pair_id.in_(group_ids)).order_by(members.c.id))).all()
        found = (await connection.execute(
            select(messages.c.pair_id, messages.c.decision, messages.c.received_at, messages.c.sender_id,
                   messages.c.recipient_id, members.c.role, held.c.state)
            .join(members, members.c.id == messages.c.sender_id)
            .outerjoin(held, held.c.message_id == messages.c.id)
            .where(messages.c.pair_id.in_(group_ids)).order_by(messages.c.received_at, messages.c.id))).all()
    written = [_Message(row.pair_id, row.role, row.decision, row.received_at,
                        row.decision != "reject" and row.state not in ("held", "rejected"), row.sender_id,
                        row.recipient_id)
               for row in found if row.decision != "autoreply"]
    roles = {row.id: row.role for row in people}
    by_group: dict[int, list[_Message]] = {}
    for message in written:  # in time order, as read
        by_group.setdefault(message.pair_id, []).append(message)
    members_of: dict[int, list[Any]] = {}
    for person in people:
        members_of.setdefault(person.pair_id, []).append(person)
    items = []
    all_waits: list[tuple[float | None, bool]] = []
    for row in group_rows:
        mine = by_group.get(row.id, [])
        count = Counter(m.sender_id for m in mine)
        waits = _group_waits(mine, roles, now)
        all_waits.extend(waits)
        items.append({"id": row.id, "kind": row.kind, "name": row.name, "status": row.status,
                      "messages": len(mine),
                      "by_member": [{"handle": p.handle, "role": p.role, "messages": count[p.id]}
                                    for p in members_of.get(row.id, [])],
                      "reply_time": _wait_figures(waits)})
    return {"total": len(group_rows), "messages": sum(item["messages"] for item in items),
            "reply_time": _wait_figures(all_waits), "items": items}


def _group_waits(written: list[_Message], roles: dict[int, str], now: datetime) -> list[tuple[float | None, bool]]:
    """For each mentee message of one group that a mentor should answer, (hours to the answer or None,
    whether its 48 hours are over or it was answered within them)."""
    found: list[tuple[float | None, bool]] = []
    for index, message in enumerate(written):
        to_mentor = message.recipient_id is None or roles.get(message.recipient_id) == "mentor"
        if message.role != "mentee" or not message.reached or not to_mentor:
            continue
        reply = next((m.at for m in written[index + 1:] if m.role == "mentor" and m.at >= message.at
                      and m.recipient_id in (None, message.sender_id)), None)
        waited = None if reply is None else reply - message.at
        in_time = waited is not None and waited <= WINDOW
        found.append((None if waited is None else _hours(waited), in_time or now - message.at >= WINDOW))
    return found


def _wait_figures(waits: list[tuple[float | None, bool]]) -> dict[str, Any]:
    """The reply-time figures (as for pairs) from _group_waits' pairs."""
    answered = [hours for hours, _ in waits if hours is not None]
    within = sum(hours is not None and hours <= _hours(WINDOW) for hours, _ in waits)
    due = sum(is_due for _, is_due in waits)
    return {"mentee_messages": len(waits), "answered": len(answered), **_spread(answered),
            "answered_within_48h": within, "share_within_48h": _share(within, due)}


def _sender_auth_kinds(detail: dict[str, Any]) -> set[str]:
    reasons = detail.get("reasons") or []
    return {str(r.get("kind")) for r in reasons if isinstance(r, dict) and r.get("rule") == "sender_auth"}


class _Attempts:
    def __init__(self) -> None:
        self.stranger = self.spoofing = self.unverified = 0

    def add(self, kind: str, text: str) -> None:
        detail = json.loads(text)
        if kind == "refused":
            self.stranger += detail.get("reason") == "stranger"
            self.spoofing += detail.get("reason") == "spoofing"
            self.unverified += detail.get("reason") in ("unverified", "auth_temperror")
        else:
            kinds = _sender_auth_kinds(detail)
            self.spoofing += "spoofing" in kinds
            self.unverified += "unverified" in kinds

    def figures(self) -> dict[str, int]:
        return {"stranger": self.stranger, "spoofing": self.spoofing, "unverified": self.unverified}
