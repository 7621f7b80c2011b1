"""What a rule proposes: one piece of mail with its once-only key, and how it reads in a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from relay.config import ProgramConfig, Settings
from relay.nudges.activity import Activity
from relay.store.pairs import Pair


@dataclass(frozen=True)
class Context:
    """One pair as a sweep sees it at `now`."""

    settings: Settings
    program: ProgramConfig
    pair: Pair
    activity: Activity
    now: datetime


@dataclass
class Planned:
    key: str  # deterministic: rule, pair, and the waiting message or the period
    kind: str  # the event kind, e.g. nudge.first
    pair_id: int
    program_id: str
    to_role: str  # mentor | mentee | coordinator
    to_handle: str | None
    rcpt: str
    subject: str
    template: str
    values: dict[str, Any]
    quiet: bool  # the recipient's quiet hours: a later sweep sends it
    message_id: str | None = None  # the waiting message it is about
    detail: dict[str, Any] = field(default_factory=dict)
    passed_over: list[str] = field(default_factory=list)  # earlier stages due at once: never sent

    def describe(self) -> str:
        who = f"{self.to_role} {self.to_handle}" if self.to_handle else self.to_role
        return f"{self.kind} to {who} (pair {self.pair_id}): {self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "pair_id": self.pair_id, "to_role": self.to_role,
                "to_handle": self.to_handle, "subject": self.subject, "message_id": self.message_id}


def humanize(delta: timedelta) -> str:
    """"48 hours", "4 days", "2 weeks": how long, in the words of a short note."""
    hours = int(delta.total_seconds() // 3600)
    if hours < 72:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = hours // 24
    if days % 7 == 0 and days >= 14:
        return f"{days // 7} weeks"
    return f"{days} days"


def local_stamp(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone.key})"
