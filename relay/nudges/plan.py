"""What a rule proposes: one piece of mail with its once-only key, and how it reads in a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.notices.programs import folder
from relay.notices.rendering import Rendered, notice
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
    template: str  # the notice's name (relay/notices/templates/<name>.txt.j2)
    values: dict[str, Any]
    quiet: bool  # the recipient's quiet hours: a later sweep sends it
    language: str = "en"  # the recipient's (relay/notices/programs.py)
    message_id: str | None = None  # the waiting message it is about
    detail: dict[str, Any] = field(default_factory=dict)
    passed_over: list[str] = field(default_factory=list)  # earlier stages due at once: never sent
    # the notice as planned (`subject` is its subject): the sweep sends it without rendering it again
    rendered: Rendered | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        who = f"{self.to_role} {self.to_handle}" if self.to_handle else self.to_role
        return f"{self.kind} to {who} (pair {self.pair_id}): {self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "pair_id": self.pair_id, "to_role": self.to_role,
                "to_handle": self.to_handle, "subject": self.subject, "message_id": self.message_id}


def notice_of(ctx: Context, name: str, language: str, values: dict[str, Any]) -> Rendered:
    """The notice `name` as it will be sent, rendered now (listings and dry runs show its subject)."""
    return notice(name, language, folder=folder(ctx.settings, ctx.program), **values)
