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

import json
import statistics
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.clock import Clock
from relay.store.schema import events, held, members, messages, pairs

WINDOW = timedelta(hours=48)
SILENT_AFTER = timedelta(days=7)
ESCALATION = "nudge.escalation"


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _spread(values: list[float]) -> dict[str, float | None]:
    """Median and p90 (inclusive linear interpolation) in hours, rounded to 0.01; None without values."""
    if not values:
        return {"median_hours": None, "p90_hours": None}
    p90 = values[0] if len(values) == 1 else statistics.quantiles(values, n=10, method="inclusive")[-1]
    return {"median_hours": round(statistics.median(values), 2), "p90_hours": round(p90, 2)}


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
    pair_id: int
    role: str
    decision: str
    at: datetime
    reached: bool  # the partner received it (or will: not rejected, not still held)
    sender_id: int = 0
    recipient_id: int | None = None  # a group's: the one member of a private word; None: the whole group


STREAM = 2000  # rows fetched at a time: the report holds one pair's messages, never the program's


async def program_figures(engine: AsyncEngine, clock: Clock, program_id: str,
                          silent_after: timedelta = SILENT_AFTER) -> dict[str, Any]:
    """The figures, read as streams (server-side cursors, STREAM rows at a time): messages in pair order,
    one pair at a time, folded into running totals; events and holds folded as they come. Memory grows
    with the number of pairs and weeks (the report lists them), not with the number of messages."""
    now = clock.now()
    in_program = select(pairs.c.id).where(pairs.c.program_id == program_id, pairs.c.kind == "pair")
    async with engine.connect() as connection:
        pair_rows = (await connection.execute(  # pairs only (groups: _groups)
            select(pairs.c.id, pairs.c.status, pairs.c.created_at, pairs.c.closed_at)
            .where(pairs.c.program_id == program_id, pairs.c.kind == "pair").order_by(pairs.c.id))).all()
        nudges = _Nudges()
        stream = await connection.stream(
            select(events.c.kind, events.c.at, events.c.pair_id)
            .where(events.c.pair_id.in_(in_program), events.c.kind.startswith("nudge."))
            .execution_options(yield_per=STREAM))
        async for row in stream:
            nudges.add(row.kind, row.at, row.pair_id)
        attempts = _Attempts()
        stream = await connection.stream(
            select(events.c.kind, events.c.detail)
            .where(events.c.pair_id.in_(in_program), events.c.kind.in_(["refused", "decision"]))
            .execution_options(yield_per=STREAM))
        async for row in stream:
            attempts.add(row.kind, row.detail)
        moderation = _Moderation()
        stream = await connection.stream(
            select(held.c.state, held.c.held_at, held.c.decided_at, held.c.severity, held.c.automatic)
            .where(held.c.program_id == program_id).execution_options(yield_per=STREAM))
        async for row in stream:
            moderation.add(row)
        written = _Written(now, nudges)
        stream = await connection.stream(
            select(messages.c.pair_id, messages.c.decision, messages.c.received_at, members.c.role, held.c.state)
            .join(members, members.c.id == messages.c.sender_id)
            .outerjoin(held, held.c.message_id == messages.c.id)
            .where(messages.c.pair_id.in_(in_program), messages.c.decision != "autoreply")
            .order_by(messages.c.pair_id, messages.c.received_at, messages.c.id)
            .execution_options(yield_per=STREAM))
        conversation: list[_Message] = []
        async for row in stream:
            if conversation and conversation[-1].pair_id != row.pair_id:
                written.add(conversation)
                conversation = []
            conversation.append(_Message(row.pair_id, row.role, row.decision, row.received_at,
                                         row.decision != "reject" and row.state not in ("held", "rejected")))
        if conversation:
            written.add(conversation)
    return {
        "program": program_id,
        "generated_at": now.isoformat(),
        "pairs": _pairs(pair_rows, written.last, now, silent_after),
        "messages": _messages(pair_rows, written, now),
        "reply_time": written.reply_time(),
        "nudges": nudges.figures(now),
        "moderation": moderation.figures(written.rejected),
        "attempts": attempts.figures(),
        "groups": await _groups(engine, program_id, now),
    }


class _Nudges:
    """Nudge events of the program; each reminder is later matched with its pair's mentor messages."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.reminders: dict[int, list[datetime]] = defaultdict(list)  # pair -> when each reminder went
        self.followed = 0
        self.due = 0

    def add(self, kind: str, at: datetime, pair_id: int) -> None:
        self.kinds[kind] += 1
        if kind != ESCALATION:
            self.reminders[pair_id].append(at)

    def match(self, pair_id: int, mentor_times: list[datetime], now: datetime) -> None:
        """A reminder is followed when the mentor wrote within WINDOW of it (mentor_times sorted)."""
        for at in self.reminders.pop(pair_id, []):
            first = bisect_left(mentor_times, at)
            replied = first < len(mentor_times) and mentor_times[first] <= at + WINDOW
            self.followed += replied
            self.due += replied or now - at >= WINDOW

    def figures(self, now: datetime) -> dict[str, Any]:
        for ats in self.reminders.values():  # reminders of pairs without a message: never followed
            self.due += sum(now - at >= WINDOW for at in ats)
        self.reminders.clear()
        escalations = self.kinds[ESCALATION]
        return {"sent": sum(self.kinds.values()) - escalations, "escalations": escalations,
                "by_kind": dict(sorted(self.kinds.items())),
                "followed_by_reply_within_48h": self.followed,
                "share_followed_within_48h": _share(self.followed, self.due)}


class _Written:
    """Running totals over the messages, folded one pair's conversation at a time."""

    def __init__(self, now: datetime, nudges: _Nudges) -> None:
        self.now, self.nudges = now, nudges
        self.last: dict[int, datetime] = {}
        self.per: Counter[tuple[date, int]] = Counter()  # (week, pair) -> messages
        self.per_week: Counter[date] = Counter()
        self.total = 0
        self.rejected = 0  # messages a policy rejected at intake (moderation's rejected_automatically)
        self.waits: list[float] = []
        self.counted = self.within = self.due = 0

    def add(self, conversation: list[_Message]) -> None:
        pair_id = conversation[0].pair_id
        self.total += len(conversation)
        self.rejected += sum(m.decision == "reject" for m in conversation)
        self.last[pair_id] = max(m.at for m in conversation)
        for message in conversation:
            week = _week_start(message.at)
            self.per[(week, pair_id)] += 1
            self.per_week[week] += 1
        next_reply: datetime | None = None  # the mentor's next message, scanning from the end
        replies: list[datetime | None] = [None] * len(conversation)
        for index in range(len(conversation) - 1, -1, -1):
            replies[index] = next_reply
            if conversation[index].role == "mentor":
                next_reply = conversation[index].at
        for message, reply in zip(conversation, replies, strict=True):
            if message.role != "mentee" or not message.reached:
                continue
            self.counted += 1
            answered_in_time = reply is not None and reply - message.at <= WINDOW
            if reply is not None:
                self.waits.append(_hours(reply - message.at))
            self.within += answered_in_time
            self.due += answered_in_time or self.now - message.at >= WINDOW
        self.nudges.match(pair_id, sorted(m.at for m in conversation if m.role == "mentor"), self.now)

    def reply_time(self) -> dict[str, Any]:
        return {"mentee_messages": self.counted, "answered": len(self.waits), **_spread(self.waits),
                "answered_within_48h": self.within, "share_within_48h": _share(self.within, self.due)}


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
    items = []
    all_waits: list[tuple[float | None, bool]] = []
    for row in group_rows:
        mine = [m for m in written if m.pair_id == row.id]
        count = Counter(m.sender_id for m in mine)
        waits = _group_waits(mine, roles, now)
        all_waits.extend(waits)
        items.append({"id": row.id, "kind": row.kind, "name": row.name, "status": row.status,
                      "messages": len(mine),
                      "by_member": [{"handle": p.handle, "role": p.role, "messages": count[p.id]}
                                    for p in people if p.pair_id == row.id],
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


def _pairs(pair_rows: Sequence[Any], last: dict[int, datetime], now: datetime,
           silent_after: timedelta) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for row in pair_rows:
        if row.status in ("closed", "ended", "paused"):
            counts[row.status] += 1
        elif now - last.get(row.id, row.created_at) >= silent_after:
            counts["silent"] += 1
        else:
            counts["active"] += 1
    return {"total": len(pair_rows), "active": counts["active"], "silent": counts["silent"],
            "paused": counts["paused"], "ended": counts["ended"], "closed": counts["closed"]}


def _messages(pair_rows: Sequence[Any], written: _Written, now: datetime) -> dict[str, Any]:
    weeks: list[dict[str, Any]] = []
    if pair_rows:
        start = _week_start(min(row.created_at for row in pair_rows))
        while start <= _week_start(now):
            begin = datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo)
            end = begin + timedelta(days=7)
            open_pairs = [row.id for row in pair_rows
                          if row.created_at < end and (row.closed_at is None or row.closed_at >= begin)]
            total = written.per_week[start]
            weeks.append({"week": _week_name(start), "pairs_open": len(open_pairs), "messages": total,
                          "per_pair": round(total / len(open_pairs), 2) if open_pairs else None,
                          "by_pair": {str(pair_id): written.per[(start, pair_id)] for pair_id in open_pairs}})
            start += timedelta(days=7)
    return {"total": written.total, "weeks": weeks}


class _Moderation:
    def __init__(self) -> None:
        self.states: Counter[str] = Counter()
        self.reviews: list[float] = []
        self.held = self.urgent = self.automatic = 0

    def add(self, row: Any) -> None:
        if row.automatic:
            self.automatic += 1
            return
        self.held += 1
        self.states[row.state] += 1
        self.urgent += row.severity == "urgent"
        if row.decided_at is not None:
            self.reviews.append(_hours(row.decided_at - row.held_at))

    def figures(self, rejected_automatically: int) -> dict[str, Any]:
        """`rejected_automatically` counts from the messages' decisions: a rejection at intake has a row in the
        queue's history only since the safeguarding work (migration 0012), and none on some paths."""
        return {"held": self.held, "waiting": self.states["held"], "released": self.states["released"],
                "rejected": self.states["rejected"], "urgent": self.urgent, "review_time": _spread(self.reviews),
                "rejected_automatically": rejected_automatically}


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
