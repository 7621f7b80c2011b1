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
- attempts: refusals of strangers writing to a pair's alias ("refused", reason "stranger"); spoofing: refused
  with reason "spoofing", plus decisions with a "spoofing" finding (held for review): a sender-authentication
  check that ran and failed. Mail that could not be verified (no records, DNS down) is not spoofing and is
  counted apart as unverified.
"""

from __future__ import annotations

import json
import statistics
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


async def program_figures(engine: AsyncEngine, clock: Clock, program_id: str,
                          silent_after: timedelta = SILENT_AFTER) -> dict[str, Any]:
    now = clock.now()
    async with engine.connect() as connection:
        pair_rows = (await connection.execute(select(pairs).where(  # pairs only: groups come with issue 16
            pairs.c.program_id == program_id, pairs.c.kind == "pair"))).all()
        pair_ids = [row.id for row in pair_rows]
        found = (await connection.execute(
            select(messages.c.pair_id, messages.c.decision, messages.c.received_at, members.c.role, held.c.state)
            .join(members, members.c.id == messages.c.sender_id)
            .outerjoin(held, held.c.message_id == messages.c.id)
            .where(messages.c.pair_id.in_(pair_ids)).order_by(messages.c.received_at, messages.c.id))).all()
        holds = (await connection.execute(select(held.c.state, held.c.held_at, held.c.decided_at, held.c.severity,
                                                 held.c.automatic)
                                          .where(held.c.program_id == program_id))).all()
        happened = (await connection.execute(
            select(events.c.kind, events.c.at, events.c.pair_id, events.c.detail)
            .where(events.c.pair_id.in_(pair_ids),
                   events.c.kind.in_(["refused", "decision"]) | events.c.kind.startswith("nudge."))
            .order_by(events.c.at, events.c.id))).all()
    written = [_Message(row.pair_id, row.role, row.decision, row.received_at,
                        row.decision != "reject" and row.state not in ("held", "rejected"))
               for row in found if row.decision != "autoreply"]
    return {
        "program": program_id,
        "generated_at": now.isoformat(),
        "pairs": _pairs(pair_rows, written, now, silent_after),
        "messages": _messages(pair_rows, written, now),
        "reply_time": _reply_time(written, now),
        "nudges": _nudges(happened, written, now),
        "moderation": _moderation(holds, sum(row.decision == "reject" for row in found)),
        "attempts": _attempts(happened),
    }


def _pairs(pair_rows: Sequence[Any], written: list[_Message], now: datetime, silent_after: timedelta) -> dict[str, int]:
    last: dict[int, datetime] = {}
    for message in written:
        last[message.pair_id] = max(last.get(message.pair_id, message.at), message.at)
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


def _messages(pair_rows: Sequence[Any], written: list[_Message], now: datetime) -> dict[str, Any]:
    per: Counter[tuple[date, int]] = Counter((_week_start(m.at), m.pair_id) for m in written)
    weeks: list[dict[str, Any]] = []
    if pair_rows:
        start = _week_start(min(row.created_at for row in pair_rows))
        while start <= _week_start(now):
            begin = datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo)
            end = begin + timedelta(days=7)
            open_pairs = [row.id for row in pair_rows
                          if row.created_at < end and (row.closed_at is None or row.closed_at >= begin)]
            total = sum(count for (week, _), count in per.items() if week == start)
            weeks.append({"week": _week_name(start), "pairs_open": len(open_pairs), "messages": total,
                          "per_pair": round(total / len(open_pairs), 2) if open_pairs else None,
                          "by_pair": {str(pair_id): per[(start, pair_id)] for pair_id in open_pairs}})
            start += timedelta(days=7)
    return {"total": len(written), "weeks": weeks}


def _reply_time(written: list[_Message], now: datetime) -> dict[str, Any]:
    by_pair: dict[int, list[_Message]] = defaultdict(list)
    for message in written:
        by_pair[message.pair_id].append(message)
    waits: list[float] = []
    counted = within = due = 0
    for conversation in by_pair.values():
        for index, message in enumerate(conversation):
            if message.role != "mentee" or not message.reached:
                continue
            counted += 1
            reply = next((m.at for m in conversation[index + 1:] if m.role == "mentor" and m.at >= message.at), None)
            answered_in_time = reply is not None and reply - message.at <= WINDOW
            if reply is not None:
                waits.append(_hours(reply - message.at))
            within += answered_in_time
            due += answered_in_time or now - message.at >= WINDOW
    return {"mentee_messages": counted, "answered": len(waits), **_spread(waits),
            "answered_within_48h": within, "share_within_48h": _share(within, due)}


def _nudges(happened: Sequence[Any], written: list[_Message], now: datetime) -> dict[str, Any]:
    nudges = [row for row in happened if row.kind.startswith("nudge.")]
    reminders = [row for row in nudges if row.kind != ESCALATION]
    followed = due = 0
    for row in reminders:
        replied = any(m.pair_id == row.pair_id and m.role == "mentor" and row.at <= m.at <= row.at + WINDOW
                      for m in written)
        followed += replied
        due += replied or now - row.at >= WINDOW
    return {"sent": len(reminders), "escalations": sum(row.kind == ESCALATION for row in nudges),
            "by_kind": dict(sorted(Counter(row.kind for row in nudges).items())),
            "followed_by_reply_within_48h": followed, "share_followed_within_48h": _share(followed, due)}


def _moderation(holds: Sequence[Any], rejected_automatically: int) -> dict[str, Any]:
    """`rejected_automatically` counts from the messages' decisions: a rejection at intake has a row in the
    queue's history only since the safeguarding work (migration 0012), and none on some paths."""
    reviewed = [row for row in holds if not row.automatic]
    states = Counter(row.state for row in reviewed)
    reviews = [_hours(row.decided_at - row.held_at) for row in reviewed if row.decided_at is not None]
    return {"held": len(reviewed), "waiting": states["held"], "released": states["released"],
            "rejected": states["rejected"], "urgent": sum(row.severity == "urgent" for row in reviewed),
            "review_time": _spread(reviews), "rejected_automatically": rejected_automatically}


def _sender_auth_kinds(detail: dict[str, Any]) -> set[str]:
    reasons = detail.get("reasons") or []
    return {str(r.get("kind")) for r in reasons if isinstance(r, dict) and r.get("rule") == "sender_auth"}


def _attempts(happened: Sequence[Any]) -> dict[str, int]:
    stranger = spoofing = unverified = 0
    for row in happened:
        if row.kind not in ("refused", "decision"):
            continue
        detail = json.loads(row.detail)
        if row.kind == "refused":
            stranger += detail.get("reason") == "stranger"
            spoofing += detail.get("reason") == "spoofing"
            unverified += detail.get("reason") in ("unverified", "auth_temperror")
        else:
            kinds = _sender_auth_kinds(detail)
            spoofing += "spoofing" in kinds
            unverified += "unverified" in kinds
    return {"stranger": stranger, "spoofing": spoofing, "unverified": unverified}
