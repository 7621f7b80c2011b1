"""Findings: what a moderation rule reports about a message: a matched span of its text, or the message itself.

A finding names its rule and the kind of thing matched, and carries the matched text exactly as written
with its offsets, so that a policy can hold, redact or explain a message from the finding alone. A finding
about the message as a whole rather than a span of its text has start and end -1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """What a rule matched: text[start:end] == match for a span, start == end == -1 for the whole message."""

    rule: str
    kind: str
    match: str
    start: int
    end: int

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "kind": self.kind, "match": self.match, "start": self.start, "end": self.end}
