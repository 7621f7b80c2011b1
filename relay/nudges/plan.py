"""What a rule proposes: one piece of mail with its once-only key, and how it reads in a report."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from relay.config import ProgramConfig, Settings
from relay.contact_exchange import allowed
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
    concern: bool = False  # one was raised on the pair, ever: no contact exchange (relay/contact_exchange.py)

    @property
    def folder(self) -> Path | None:
        """The program's own templates, if it has some."""
        return folder(self.settings, self.program)

    @property
    def exchange(self) -> bool:
        """Whether its ending offers the contact exchange (relay/contact_exchange.allowed)."""
        return allowed(self.program, self.pair, concern=self.concern)


@dataclass
class Planned:
    key: str  # deterministic: rule, pair, and the waiting message or the period
    kind: str  # the event kind, e.g. nudge.first
    pair_id: int
    program_id: str
    to_role: str  # mentor | mentee | coordinator
    to_handle: str | None
    rcpt: str
    template: str  # the notice's name (relay/notices/templates/<name>.txt.j2)
    values: dict[str, Any]  # the template's values (and rendering.notice's `audience`)
    quiet: bool  # the recipient's quiet hours: a later sweep sends it
    language: str = "en"  # the recipient's (relay/notices/programs.py)
    folder: Path | None = None  # the program's own templates (relay/notices/programs.folder)
    message_id: str | None = None  # the waiting message it is about
    detail: dict[str, Any] = field(default_factory=dict)
    passed_over: list[str] = field(default_factory=list)  # earlier stages due at once: never sent
    anchor_at: datetime | None = None  # a check-in's silence: counted from then (its key's last part)
    # The notice, rendered when first asked for (its subject or its text), then kept: it is sent as rendered.
    # A rule proposes the same mail at every sweep until it is sent and long after (its key taken): a sweep
    # renders only what it sends, defers or reports, not everything the rules propose.
    _rendered: Rendered | None = field(default=None, repr=False, compare=False)
    _subject: str | None = field(default=None, repr=False, compare=False)  # kept by `reported`

    @property
    def rendered(self) -> Rendered:
        if self._rendered is None:
            self._rendered = notice(self.template, self.language, folder=self.folder, **self.values)
        return self._rendered

    @property
    def subject(self) -> str:
        return self._subject if self._subject is not None else self.rendered.subject

    def reported(self) -> Planned:
        """What a sweep's result keeps of it: what it says about it (describe, as_dict), not its text or
        values, so that a sweep of 100,000 pairs holds a few hundred bytes per notice after sending it."""
        return replace(self, values={}, _rendered=None, _subject=self.subject)

    def describe(self) -> str:
        who = f"{self.to_role} {self.to_handle}" if self.to_handle else self.to_role
        return f"{self.kind} to {who} (pair {self.pair_id}): {self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "pair_id": self.pair_id, "to_role": self.to_role,
                "to_handle": self.to_handle, "subject": self.subject, "message_id": self.message_id}
